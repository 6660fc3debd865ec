"""Helpers for the retention tests: databases, simulated time, snapshots, invariants in SQL.

The fixtures give each test an empty database with the models' schema, on SQLite and
PostgreSQL, cheaper than building the schema per test: a SQLite file copied from a
template, and a PostgreSQL schema of its own (``search_path``) emptied per test.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta
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
    """Per record key: its versions as (transaction_id, end_transaction_id, operation_type)."""
    key = [c for c in table.primary_key.columns if c.name != "transaction_id"]
    query = sa.select(
        *key, table.c.transaction_id, table.c.end_transaction_id, table.c.operation_type
    ).order_by(*key, table.c.transaction_id)
    found: dict[tuple[Any, ...], list[tuple[Any, ...]]] = defaultdict(list)
    with engine.connect() as conn:
        for row in conn.execute(query):
            found[tuple(row[: len(key)])].append(tuple(row[len(key) :]))
    return dict(found)


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
            # H2: each version ends where the next begins
            nxt = version.alias("next_version")
            same_record = nxt.c.id == version.c.id
            h2 = {
                "versions ending nowhere": [
                    version.c.end_transaction_id.is_not(None),
                    ~sa.exists().where(
                        same_record, nxt.c.transaction_id == version.c.end_transaction_id
                    ),
                ],
                "holes before versions": [
                    sa.exists().where(same_record, nxt.c.transaction_id < version.c.transaction_id),
                    ~sa.exists().where(
                        same_record, nxt.c.end_transaction_id == version.c.transaction_id
                    ),
                ],
            }
            for what, conditions in h2.items():
                found = conn.execute(
                    sa.select(version.c.id, version.c.transaction_id).where(*conditions)
                ).all()
                if found:
                    problems.append(f"H2 {base_name}: {what}: {found}")
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
