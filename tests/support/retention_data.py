"""Helpers for the retention tests: databases, simulated time, snapshots, invariants in SQL.

The fixtures give each test an empty database with the models' schema, on SQLite and
PostgreSQL, cheaper than building the schema per test: a SQLite file copied from a
template, and a PostgreSQL schema of its own (``search_path``) emptied per test.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

import models

INSERT, UPDATE, DELETE = 0, 1, 2
NOW = datetime(2026, 6, 1, 12, 0, 0)
TX = models.Transaction.__table__
ENTITY_VERSION_TABLES = {
    "license": models.LicenseVersion.__table__,
    "maintainer": models.MaintainerVersion.__table__,
    "package": models.PackageVersion.__table__,
    "release": models.ReleaseVersion.__table__,
}
PACKAGE_VERSION_TABLE = ENTITY_VERSION_TABLES["package"]
ASSOCIATION_VERSION_TABLE = models.Base.metadata.tables["package_maintainer_version"]
CHANGES = models.Base.metadata.tables["transaction_changes"]


PG_SCHEMA = "retention_tests"


def plain(table: sa.Table) -> sa.TableClause:
    """A lightweight copy of ``table``: Continuum's association listener ignores it."""
    return sa.table(table.name, *(sa.column(c.name, c.type) for c in table.c))


@pytest.fixture(scope="session")
def sqlite_history_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("retention") / "template.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    models.Base.metadata.create_all(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_history_url(postgres_database: sa.URL) -> str:
    # no fsync per commit: these tests commit a lot and never crash the server
    options = f"-csearch_path={PG_SCHEMA} -csynchronous_commit=off"
    url = postgres_database.update_query_dict({"options": options})
    admin = sa.create_engine(postgres_database, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {PG_SCHEMA}"))
    admin.dispose()
    engine = sa.create_engine(url)
    models.Base.metadata.create_all(engine)
    engine.dispose()
    return url.render_as_string(hide_password=False)


@pytest.fixture
def history_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database with the models' schema, on the current backend."""
    if backend == "sqlite":
        path = tmp_path / "history.db"
        shutil.copy(request.getfixturevalue("sqlite_history_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_history_url")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    names = ", ".join(f'"{table.name}"' for table in models.Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY"))
    engine.dispose()
    return url


@pytest.fixture
def history_engine(history_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(history_url)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _no_fsync)
    yield engine
    engine.dispose()


def _no_fsync(dbapi_connection: Any, record: Any) -> None:
    dbapi_connection.execute("PRAGMA synchronous = OFF")


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def last_transaction_id(conn: sa.Connection | Session) -> int:
    return int(conn.execute(sa.select(sa.func.max(TX.c.id))).scalar_one())


def commit_at(session: Session, when: datetime) -> int:
    """Commit the session, its transaction dated ``when``; return the transaction's id."""
    session.flush()  # Continuum writes the transaction row here
    tx_id = last_transaction_id(session)
    session.execute(sa.update(TX).where(TX.c.id == tx_id).values(issued_at=when))
    session.commit()
    return tx_id


def chains(engine: sa.Engine, table: sa.Table) -> dict[tuple[Any, ...], list[tuple[Any, ...]]]:
    """Per record key: its versions as (transaction_id, end_transaction_id, operation_type).

    Oldest first in commit order, the chain the end pointers draw (H2); many-to-many
    association tables, whose end pointers Continuum never fills, in id order.
    """
    key = [c for c in table.primary_key.columns if c.name != "transaction_id"]
    query = sa.select(
        *key, table.c.transaction_id, table.c.end_transaction_id, table.c.operation_type
    ).order_by(*key, table.c.transaction_id)
    found: dict[tuple[Any, ...], list[tuple[Any, ...]]] = defaultdict(list)
    with engine.connect() as conn:
        for row in conn.execute(query):
            found[tuple(row[: len(key)])].append(tuple(row[len(key) :]))
    if table is ASSOCIATION_VERSION_TABLE:
        return dict(found)
    return {record: commit_ordered(rows) for record, rows in found.items()}


def commit_ordered(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """One record's (transaction_id, end_transaction_id, ...) rows along their end pointers.

    Rows that do not form one chain come back in id order, for the H2 check to report.
    """
    by_tx = {row[0]: row for row in rows}
    ends = {row[1] for row in rows if row[1] is not None}
    firsts = [row for row in rows if row[0] not in ends]
    if len(firsts) != 1:
        return sorted(rows)
    chain = [firsts[0]]
    while chain[-1][1] is not None and chain[-1][1] in by_tx and len(chain) <= len(rows):
        chain.append(by_tx[chain[-1][1]])
    return chain if len(chain) == len(rows) else sorted(rows)


def chain_problems(name: str, key: tuple[Any, ...], rows: list[tuple[Any, ...]]) -> list[str]:
    """H2 in commit order for one record: one chain from one first version to one open one."""
    chain = commit_ordered(rows)
    linked = all(before[1] == after[0] for before, after in pairwise(chain))
    if not linked or chain[-1][1] is not None or len(chain) != len(rows):
        return [f"H2 {name} {key}: versions {sorted(rows)} are not one chain"]
    return []


def transaction_ids(engine: sa.Engine) -> set[int]:
    with engine.connect() as conn:
        return set(conn.execute(sa.select(TX.c.id)).scalars())


def snapshot(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, sorted: to compare whole database states."""
    state: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for table in models.Base.metadata.sorted_tables:
            rows = conn.execute(sa.select(table)).all()
            state[table.name] = sorted((tuple(row) for row in rows), key=repr)
    return state


def restore(engine: sa.Engine, state: dict[str, list[tuple[Any, ...]]]) -> None:
    """Put the database back to a :func:`snapshot`."""
    tables = models.Base.metadata.sorted_tables
    with engine.begin() as conn:
        for table in reversed(tables):
            conn.execute(sa.delete(plain(table)))
        for table in tables:
            rows = [dict(zip(table.c.keys(), row, strict=True)) for row in state[table.name]]
            if rows:
                conn.execute(sa.insert(plain(table)), rows)


def history_problems(engine: sa.Engine) -> list[str]:
    """H1-H3 checked in SQL on every entity version table; empty when all hold."""
    problems: list[str] = []
    with engine.connect() as conn:
        for base_name, version in ENTITY_VERSION_TABLES.items():
            base = models.Base.metadata.tables[base_name]
            # H1: every live row has exactly one open version, equal to it
            open_versions = (
                sa.select(sa.func.count())
                .where(version.c.id == base.c.id, version.c.end_transaction_id.is_(None))
                .scalar_subquery()
            )
            bad = conn.execute(sa.select(base.c.id).where(open_versions != 1)).scalars().all()
            if bad:
                problems.append(f"H1 {base_name}: live rows without one open version: {bad}")
            columns = [c.name for c in base.c]
            mismatch = conn.execute(
                sa.select(base.c.id)
                .join(version, version.c.id == base.c.id)
                .where(
                    version.c.end_transaction_id.is_(None),
                    sa.or_(*(version.c[name].is_distinct_from(base.c[name]) for name in columns)),
                )
            ).all()
            if mismatch:
                problems.append(f"H1 {base_name}: open version differs from the live row")
            # H2: one chain per record, in commit order
            for key, rows in chains(engine, version).items():
                problems += chain_problems(base_name, key, rows)
        # H3: every version's transaction exists
        for version in [*ENTITY_VERSION_TABLES.values(), ASSOCIATION_VERSION_TABLE]:
            dangling = conn.execute(
                sa.select(sa.func.count())
                .select_from(version)
                .where(~sa.exists().where(TX.c.id == version.c.transaction_id))
            ).scalar_one()
            if dangling:
                problems.append(f"H3 {version.name}: {dangling} versions without transaction")
    return problems


def unreferenced_transactions(engine: sa.Engine) -> set[int]:
    """Transactions no version row refers to (R6 says the pruner leaves none)."""
    conditions = [
        ~sa.exists().where(column == TX.c.id)
        for version in [*ENTITY_VERSION_TABLES.values(), ASSOCIATION_VERSION_TABLE]
        for column in (version.c.transaction_id, version.c.end_transaction_id)
    ]
    with engine.connect() as conn:
        return set(conn.execute(sa.select(TX.c.id).where(*conditions)).scalars())


_given_ids: list[int] = []


@sa.event.listens_for(models.Transaction, "before_insert")
def _take_given_id(mapper: Any, connection: Any, target: Any) -> None:
    # Continuum inserts the transaction through a session of its own: the id to take
    # cannot travel in the application session's info
    if _given_ids:
        target.id = _given_ids.pop()


def take_id(session: Session, tx_id: int) -> None:
    """Give the next transaction ``session`` writes the id ``tx_id``.

    Continuum numbers a transaction at its first flush; two writers that commit in the
    other order leave ids out of commit order. Writing transactions one after the other
    with the ids they would have taken gives the same rows, on SQLite too (whose single
    writer lock makes real interleaving impossible). Single-threaded use only.
    """
    _given_ids[:] = [tx_id]


def forget_id() -> None:
    """Drop an id that no transaction took (the session wrote nothing versioned)."""
    _given_ids.clear()


def expected_chain(
    rows: list[tuple[Any, ...]],
    issued: dict[int, datetime | None],
    rules: Any,
    association: bool,
) -> list[tuple[Any, ...]]:
    """The oracle: what R1-R5 leave of one record's chain (oldest first, commit order).

    A transaction with no time (``issued_at`` NULL) is not older than any cutoff: the
    versions whose age it decides are kept."""
    newest = rows[-1]

    def before(tx_id: int, days: int) -> bool:
        moment = issued[tx_id]
        return moment is not None and moment < NOW - timedelta(days=days)

    whole = (
        rules.deleted_keep_days is not None
        and newest[2] == DELETE
        and before(newest[0], rules.deleted_keep_days)
    )

    def eligible(i: int) -> bool:
        if whole:
            return True
        if not rules.prunes_superseded or i == len(rows) - 1:
            return False
        return (
            len(rows) - i > max(1, rules.keep_versions or 0)
            and (association or rows[i][1] is not None)
            and (rules.keep_days is None or before(rows[i + 1][0], rules.keep_days))
        )

    prefix = 0
    while prefix < len(rows) and eligible(prefix):
        prefix += 1
    return rows[prefix:]


# --- histories and a policy the retention, history and CLI tests share ---------------


def recreated_while_deleted(engine: sa.Engine) -> None:
    """The issue's history: B flushes first (id 2), A deletes package 100 and commits
    (id 3), then B inserts package 100 again and commits."""
    with Session(engine) as session:
        take_id(session, 1)
        session.add_all([models.Package(id=100, name="victim"), models.Package(id=101, name="o")])
        session.commit()
        take_id(session, 3)  # A
        session.delete(session.get(models.Package, 100))
        session.commit()
        take_id(session, 2)  # B, numbered at its first flush, before A
        session.get(models.Package, 101).summary = "o2"  # type: ignore[union-attr]
        session.add(models.Package(id=100, name="victim", summary="recreated"))
        session.commit()


def overtaken_chain(engine: sa.Engine, first: int = 1) -> None:
    """Package 1 in commit order a(tx 1) -> X(tx 3) -> Y(tx 2) -> Z(tx 4), ids from ``first``."""
    with Session(engine) as session:
        package = models.Package(id=1, name="p", summary="a")
        for offset, summary in [(0, "a"), (2, "X"), (1, "Y"), (3, "Z")]:
            take_id(session, first + offset)
            if offset == 0:
                session.add(package)
            package.summary = summary
            session.commit()


POLICY = "keep_days = 200\nkeep_versions = 2\n"


def ago(days: float) -> datetime:
    return datetime.now(UTC).replace(tzinfo=None) - timedelta(days=days)


@pytest.fixture
def history(history_engine: sa.Engine) -> sa.Engine:
    """Three packages written 700, 500, 300, 100 and 1 days ago."""
    with Session(history_engine) as session:
        for name in ("a", "b", "c"):
            package = models.Package(name=name, summary="0")
            session.add(package)
            commit_at(session, ago(700))
            for i, age in enumerate([500, 300, 100, 1], start=1):
                package.summary = str(i)
                commit_at(session, ago(age))
    return history_engine


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "retention.toml"
    path.write_text(POLICY)
    return path
