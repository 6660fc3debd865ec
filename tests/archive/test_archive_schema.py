"""Archived files read back after the schema changed: columns are matched by name."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import sqlalchemy as sa

from tests.support.column_types import Lowered
from vestige.archive import ArchiveReader, ArchiveWriter, Part
from vestige.archive.parquet import to_arrow

THEN = sa.Table(
    "event_version",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("transaction_id", sa.BigInteger, primary_key=True),
    sa.Column("token", sa.Uuid),
    sa.Column("payload", sa.JSON),
    sa.Column("amount", sa.Numeric(12, 4)),
    sa.Column("at", sa.DateTime(timezone=True)),
    sa.Column("dropped_later", sa.String(20)),
)
NOW = sa.Table(
    "event_version",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("transaction_id", sa.BigInteger, primary_key=True),
    sa.Column("token", sa.Uuid),
    sa.Column("payload", sa.JSON),
    sa.Column("amount", sa.Numeric(12, 4)),
    sa.Column("at", sa.DateTime(timezone=True)),
    sa.Column("added_later", sa.Integer),
)
TOKEN = uuid.UUID("00000000-0000-4000-8000-000000000001")
AT = datetime(2025, 3, 1, 12, 30, tzinfo=UTC)
ROWS = [
    (7, 2, TOKEN, {"a": [1, 2]}, Decimal("12.3400"), AT, "old"),
    (7, 1, None, None, None, None, None),
    (8, 3, TOKEN, {}, Decimal("0.0001"), AT, "x"),
]


def write(tmp_path: Path) -> str:
    url = str(tmp_path / "archive")
    writer = ArchiveWriter(url)
    rows, months = to_arrow(THEN, [(*row, 202503) for row in ROWS])
    staged = writer.stage([Part(THEN, rows, months, ["id", "transaction_id"])])
    writer.commit(staged)
    writer.close()
    return url


def test_types_are_kept_in_the_file_and_rows_sorted_by_key_then_transaction(
    tmp_path: Path,
) -> None:
    url = write(tmp_path)
    [path] = (tmp_path / "archive" / "event_version" / "month=2025-03").glob("*.parquet")
    table = pq.read_table(path)
    types = {field.name: str(field.type) for field in table.schema}
    assert types["token"] == "extension<arrow.uuid>" and types["payload"] == "extension<arrow.json>"
    assert types["amount"] == "decimal128(12, 4)" and types["at"] == "timestamp[us, tz=UTC]"
    assert [(row["id"], row["transaction_id"]) for row in table.to_pylist()] == [
        (7, 1),
        (7, 2),
        (8, 3),
    ]
    with ArchiveReader(url) as reader:
        [row] = reader.rows(THEN, {"id": 7, "transaction_id": 2})
    assert row == dict(zip([c.name for c in THEN.c], ROWS[0], strict=True))


def test_a_column_added_reads_as_none_and_a_column_dropped_is_not_read(tmp_path: Path) -> None:
    url = write(tmp_path)
    with ArchiveReader(url) as reader:
        rows = sorted(reader.rows(NOW, {"id": 7}), key=lambda row: row["transaction_id"])
    assert [set(row) for row in rows] == [{c.name for c in NOW.c}] * 2
    assert rows[1]["added_later"] is None and rows[1]["payload"] == {"a": [1, 2]}
    assert rows[1]["token"] == TOKEN and rows[1]["amount"] == Decimal("12.3400")
    assert rows[1]["at"] == AT


def test_sqlite_reads_timezone_aware_times_back_naive_utc(tmp_path: Path) -> None:
    url = write(tmp_path)
    with ArchiveReader(url, naive_times=True) as reader:
        [row] = reader.rows(NOW, {"id": 8})
    assert row["at"] == AT.replace(tzinfo=None)


PLAIN = sa.Table(
    "plain_version",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("transaction_id", sa.BigInteger, primary_key=True),
    sa.Column("name", sa.String(20)),
    sa.Column("naive", sa.DateTime),
    sa.Column("aware", sa.DateTime(timezone=True)),
    sa.Column("flag", sa.Boolean),
)


def test_rows_become_the_same_arrow_table_as_tuples_or_as_sqlalchemy_rows() -> None:
    """Tuples go to Arrow as one struct array; SQLAlchemy rows (and the rows of tables
    whose values need converting) go column by column: the same table either way."""
    engine = sa.create_engine("sqlite://")
    PLAIN.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            PLAIN.insert(),
            [
                {
                    "id": 1,
                    "transaction_id": 10,
                    "name": "a",
                    "naive": datetime(2025, 1, 1, 12),
                    "aware": datetime(2025, 1, 1, 12),
                    "flag": True,
                },
                {
                    "id": 2,
                    "transaction_id": 11,
                    "name": None,
                    "naive": None,
                    "aware": None,
                    "flag": None,
                },
            ],
        )
        month = sa.case((PLAIN.c.id == 1, 202501))
        rows = conn.execute(sa.select(*PLAIN.c, month).order_by(PLAIN.c.id)).all()
    assert type(rows[0]) is not tuple

    from_rows, row_months = to_arrow(PLAIN, rows)
    from_tuples, months = to_arrow(PLAIN, [tuple(row) for row in rows])

    assert from_rows.equals(from_tuples) and row_months.equals(months)
    assert months.to_pylist() == [202501, None]
    assert from_tuples.column("name").to_pylist() == ["a", None]


def test_times_go_to_arrow_as_their_utc_time() -> None:
    """An aware time in a naive column is kept as its UTC time; a naive time in an aware
    column is taken as UTC (SQLite gives aware columns back naive)."""
    plus_two = timezone(timedelta(hours=2))
    row = (1, 10, "a", datetime(2025, 1, 1, 14, tzinfo=plus_two), datetime(2025, 1, 1, 12), True)
    (first,) = to_arrow(PLAIN, [(*row, 202501)])[0].to_pylist()
    assert first["naive"] == datetime(2025, 1, 1, 12)
    assert first["aware"] == datetime(2025, 1, 1, 12, tzinfo=UTC)


class Color(enum.Enum):
    RED = "r"
    BLUE = "b"


DECORATED = sa.Table(
    "decorated_version",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("transaction_id", sa.BigInteger, primary_key=True),
    sa.Column("name", Lowered()),
    sa.Column("color", sa.Enum(Color)),
    sa.Column("shade", sa.Enum(Color, values_callable=lambda kind: [m.value for m in kind])),
)


def test_a_type_decorator_and_an_enum_class_are_stored_as_the_database_stores_them(
    tmp_path: Path,
) -> None:
    """Values as SQLAlchemy gives them (``ABC``, ``Color.RED``) go into the file as the
    database stores them (``abc``, ``RED``, ``b``) and come back as SQLAlchemy gives them."""
    url = str(tmp_path / "archive")
    writer = ArchiveWriter(url)
    rows = [(1, 1, "ABC", Color.RED, Color.BLUE, 202501), (1, 2, None, None, None, 202501)]
    part = Part(DECORATED, *to_arrow(DECORATED, rows), ["id", "transaction_id"])
    writer.commit(writer.stage([part]))
    writer.close()
    [path] = (tmp_path / "archive" / "decorated_version" / "month=2025-01").glob("*.parquet")
    stored = pq.read_table(path).to_pylist()[0]
    assert (stored["name"], stored["color"], stored["shade"]) == ("abc", "RED", "b")
    with ArchiveReader(url) as reader:
        read = sorted(reader.rows(DECORATED, {"id": 1}), key=lambda row: row["transaction_id"])
    assert [tuple(row.values()) for row in read] == [row[:5] for row in rows]
