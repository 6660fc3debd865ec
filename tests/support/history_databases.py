"""Helpers the history tests share: a database per module and a statement counter.

Tests that only read build their fixed history once per backend in a database of
their own (``module_database``), instead of once per test.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

import models


@contextmanager
def module_database(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    build: Callable[[str], None] | None = None,
) -> Iterator[str]:
    """The URL of a new database with the models' schema, on ``request.param``'s backend.

    ``build(url)``, when given, makes the schema instead of ``create_all``.

    On PostgreSQL it is a database of its own on the test server, dropped afterwards,
    so the per-test reset of the shared test database leaves it alone.
    """
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('history') / 'history.db'}"
        cleanup = None
    else:
        server: sa.URL = request.getfixturevalue("postgres_database")
        name = f"{server.database}_{uuid.uuid4().hex[:6]}"
        admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = server.set(database=name).render_as_string(hide_password=False)
        cleanup = (admin, name)
    if build is not None:
        build(url)
    else:
        engine = sa.create_engine(url)
        models.Base.metadata.create_all(engine)
        engine.dispose()
    try:
        yield url
    finally:
        if cleanup is not None:
            admin, name = cleanup
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


@contextmanager
def count_statements(engine: sa.Engine) -> Iterator[list[str]]:
    """Collect the SQL statements ``engine`` sends while the block runs."""
    statements: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
