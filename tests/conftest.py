"""Databases for the tests: SQLite files and one PostgreSQL database per run.

Every database test takes the ``db_url`` fixture (or one built on it) and runs twice,
``[sqlite]`` and ``[postgresql]``. The PostgreSQL server comes from
``VESTIGE_TEST_POSTGRES_URL`` (default: trust auth on 127.0.0.1:5432); each run creates
its own uniquely named database, gives every test an empty ``public`` schema in it, and
drops it at the end. Without a server the ``[postgresql]`` tests skip with the reason;
with ``CI=true`` the run fails instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support.backends import BACKEND_PARAMS, BACKENDS, reset_postgres_schema
from tests.support.project import ROOT, alembic_config
from vestige.config import render_url

# BACKENDS and ROOT stay importable from here for the workshop's tests.
__all__ = ["BACKENDS", "ROOT", "alembic_config"]

DEFAULT_POSTGRES_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"

_postgres_problem: str | None = None


def _server_url() -> sa.URL:
    return sa.make_url(os.environ.get("VESTIGE_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL))


def _probe_postgres() -> str | None:
    url = _server_url()
    try:
        engine = sa.create_engine(url, connect_args={"connect_timeout": 5})
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # any failure to connect means: no PostgreSQL here
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        return f"PostgreSQL unreachable at {render_url(url)}: {reason}"
    return None


def pytest_sessionstart(session: pytest.Session) -> None:
    global _postgres_problem
    _postgres_problem = _probe_postgres()
    if _postgres_problem and os.environ.get("CI", "").lower() == "true":
        pytest.exit(
            f"{_postgres_problem}. CI=true requires PostgreSQL: start it or set "
            "VESTIGE_TEST_POSTGRES_URL",
            returncode=1,
        )


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[sa.URL]:
    """A fresh PostgreSQL database for this test run, dropped at the end."""
    if _postgres_problem:
        pytest.skip(f"{_postgres_problem} (set VESTIGE_TEST_POSTGRES_URL)")
    server = _server_url()
    name = f"vestige_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=BACKEND_PARAMS)
def backend(request: pytest.FixtureRequest) -> str:
    """``"sqlite"`` or ``"postgresql"``; database tests are parametrized over both."""
    return str(request.param)


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database on the current backend."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    url: sa.URL = request.getfixturevalue("postgres_database")
    reset_postgres_schema(url)
    return url.render_as_string(hide_password=False)


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    """An engine on an empty database of the current backend."""
    engine = sa.create_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def migrated_engine(engine: sa.Engine, db_url: str) -> sa.Engine:
    """An engine on a database upgraded to head by the project's migrations."""
    from alembic import command

    command.upgrade(alembic_config(db_url), "head")
    return engine


@pytest.fixture
def schema_engine(engine: sa.Engine) -> sa.Engine:
    """An engine on a database whose schema came from ``create_all`` (faster)."""
    import models

    models.Base.metadata.create_all(engine)
    return engine
