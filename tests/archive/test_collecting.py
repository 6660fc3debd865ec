"""The rows an archiving prune deletes reach Arrow as the database held them, whichever
way they come: ``COPY ... TO STDOUT`` in CSV (PostgreSQL, plain types) or ``RETURNING``."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from vestige.retention.collecting import Collector

PLAIN = sa.Table(
    "plain_version",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("transaction_id", sa.BigInteger, primary_key=True),
    sa.Column("flag", sa.Boolean),
    sa.Column("small", sa.SmallInteger),
    sa.Column("ratio", sa.Float),
    sa.Column("name", sa.Text),
    sa.Column("label", sa.String(40)),
    sa.Column("naive", sa.DateTime),
    sa.Column("aware", sa.DateTime(timezone=True)),
    sa.Column("day", sa.Date),
    sa.Column("amount", sa.Numeric(12, 4)),
    sa.Column("payload", sa.JSON),
    sa.Column("month", sa.Integer),  # a column named like the partition: kept apart
)
PLUS_TWO = timezone(timedelta(hours=2))
# the values CSV makes hard: separators, quotes and newlines in text, the empty string
# beside NULL, words that CSV readers take for NULL, NaN and infinities
ROWS: list[dict[str, Any]] = [
    {
        "id": 1,
        "transaction_id": 10,
        "flag": True,
        "small": -7,
        "ratio": float("nan"),
        "name": 'a,"b"\nc\r\nd',
        "label": "",
        "naive": datetime(2025, 1, 31, 23, 59, 59, 999999),
        "aware": datetime(2025, 1, 1, 14, tzinfo=PLUS_TWO),
        "day": date(2024, 2, 29),
        "amount": Decimal("-12.3400"),
        "payload": {"b": [1, "x"], "a": None},
        "month": 13,
    },
    {
        "id": 1,
        "transaction_id": 11,
        "flag": False,
        "small": 0,
        "ratio": float("-inf"),
        "name": "NA",
        "label": "NULL",
        "naive": datetime(2025, 2, 1),
        "aware": datetime(2025, 2, 1, tzinfo=UTC),
        "day": date(2025, 2, 1),
        "amount": Decimal("0.0001"),
        "payload": [1, 2],
        "month": None,
    },
    {
        "id": 2,
        "transaction_id": 10,
        "flag": None,
        "small": None,
        "ratio": -0.0,
        "name": "\\N é ✓ N/A",
        "label": None,
        "naive": None,
        "aware": None,
        "day": None,
        "amount": None,
        "payload": None,
        "month": 0,
    },
]
MONTHS = {10: 202501, 11: 202502}


def _comparable(column: sa.Column[Any], value: Any) -> Any:
    """A value as the archive keeps it: JSON parsed, times in UTC (SQLite gives aware
    times back naive: UTC), NaN comparable."""
    if value is None:
        return None
    if isinstance(column.type, sa.JSON):
        return json.loads(value) if isinstance(value, str) else value
    if isinstance(value, datetime) and column.type.timezone:  # type: ignore[attr-defined]
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return value


def _collect(engine: sa.Engine) -> tuple[Collector, int, list[Any]]:
    """Delete every row through a collector; what it collected, as Python values."""
    with engine.connect() as conn:
        collector = Collector(conn)
        into: list[Any] = []
        month = sa.case(*((PLAIN.c.transaction_id == tx, number) for tx, number in MONTHS.items()))
        count = collector.delete(sa.delete(PLAIN), PLAIN, into, month, {})
        conn.commit()
        left = conn.execute(sa.select(sa.func.count()).select_from(PLAIN)).scalar_one()
    assert left == 0
    part = collector.part(PLAIN, into, ["id", "transaction_id"])
    return collector, count, [part.rows.to_pylist(), part.months.to_pylist()]


def test_deleted_rows_reach_arrow_as_the_database_held_them(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        PLAIN.metadata.create_all(conn)
        conn.execute(PLAIN.insert(), ROWS)
        held = [row._asdict() for row in conn.execute(sa.select(PLAIN)).all()]

    collector, count, (rows, months) = _collect(engine)

    assert count == len(ROWS)
    key = lambda row: (row["id"], row["transaction_id"])  # noqa: E731
    expected = sorted(held, key=key)
    got = sorted(rows, key=key)
    assert [[_comparable(c, row[c.name]) for c in PLAIN.c] for row in got] == [
        [_comparable(c, row[c.name]) for c in PLAIN.c] for row in expected
    ]
    assert sorted(months) == sorted(MONTHS[row["transaction_id"]] for row in ROWS)
    # PostgreSQL took these rows as CSV; SQLite has no COPY
    assert collector.by_copy(PLAIN) is (engine.dialect.name == "postgresql")


def test_a_value_csv_cannot_carry_falls_back_to_returning_and_deletes_once(
    engine: sa.Engine,
) -> None:
    """A time of ``infinity`` (PostgreSQL) does not parse as an Arrow timestamp: the
    DELETE is rolled back to its savepoint and run again with ``RETURNING``; every row is
    deleted and collected once. SQLite keeps the same value as its latest time."""
    endless = [{**ROWS[1], "id": 3, "naive": None}, {**ROWS[2], "id": 4}]
    PLAIN.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(PLAIN.insert(), endless)
        latest = "infinity" if engine.dialect.name == "postgresql" else "9999-12-31 23:59:59.999999"
        conn.execute(sa.text(f"UPDATE plain_version SET naive = '{latest}' WHERE id = 3"))

    collector, count, (rows, _) = _collect(engine)

    assert count == 2
    assert sorted(row["id"] for row in rows) == [3, 4]
    assert [row["naive"] for row in rows if row["id"] == 3] == [datetime.max]
    assert collector.by_copy(PLAIN) is False


@pytest.fixture(autouse=True)
def _drop(engine: sa.Engine) -> Any:
    yield
    PLAIN.metadata.drop_all(engine)


def test_a_statement_written_anew_per_execution_goes_by_returning(engine: sa.Engine) -> None:
    """An IN list is rendered per execution: its COPY text cannot be kept, so the rows
    come by ``RETURNING``, deleted once."""
    PLAIN.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(PLAIN.insert(), ROWS)
    with engine.connect() as conn:
        collector = Collector(conn)
        into: list[Any] = []
        statement = sa.delete(PLAIN).where(PLAIN.c.transaction_id.in_([10]))
        count = collector.delete(statement, PLAIN, into, sa.literal(202501), {})
        conn.commit()
        left = conn.execute(sa.select(PLAIN.c.transaction_id)).scalars().all()
    assert count == 2 and left == [11]
    part = collector.part(PLAIN, into, ["id", "transaction_id"])
    assert sorted(part.rows.column("id").to_pylist()) == [1, 2]
    assert collector.by_copy(PLAIN) is False
