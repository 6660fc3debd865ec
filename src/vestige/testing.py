"""A pytest plugin that tests a migration history as history: ``vestige.testing``.

Built on `pytest-alembic <https://pytest-alembic.readthedocs.io>`_: its runner moves
through the history and its four checks (single head, upgrade from empty, models match
DDL, up/down consistency) are re-exported here; Vestige adds three that know about
version tables. Enable it in ``conftest.py``::

    # conftest.py
    pytest_plugins = ["vestige.testing"]

    # test_migrations.py
    from vestige.testing import *    # the seven tests below (``__all__`` holds only tests)

The migrations run only on a scratch database the kit creates and drops (on the
application's PostgreSQL server, else a SQLite file). Before anything runs, env.py is run
up to its ``context.configure()`` with ``sqlalchemy.url`` and ``DATABASE_URL`` naming a
sentinel: if it does not configure a connection of the scratch database (Alembic's
templates connect by themselves), every test fails with one line saying what to change.

The fixtures come with ``pytest_plugins``; without it, import them by name into the test
module (``from vestige.testing import alembic_runner, vestige_metadata, ...``). A star
import never brings fixtures, so it cannot shadow the ``alembic_engine`` of your conftest.
pytest-alembic's own collection hook fails on pytest 9 (0.13.1); vestige.testing does not
need it, and Vestige's pytest plugin (:mod:`vestige.pytest_plugin`, loaded by pytest
wherever Vestige is installed) unregisters it, so a plain ``pytest`` works. Because that
plugin comes from Vestige's distribution, pytest would rewrite the asserts of every Vestige
module; this one opts out (PYTEST_DONT_REWRITE), so that a failing test says the kit's own
lines and nothing more.

Fixtures (override any in ``conftest.py``):

- ``vestige_settings``: the project's settings, loaded once per test session
  (``load_settings()``); the fixtures below take the project directory, the database's
  backend and the models module from it;
- ``alembic_config``: the Alembic config (default: the project's, read as ``alembic``
  reads it), a ``dict`` or a ``pytest_alembic.Config`` as pytest-alembic takes;
- ``alembic_engine``: the scratch database the tests migrate; an override must be empty;
- ``alembic_runner``: pytest-alembic's runner over those two, once env.py is checked;
- ``vestige_metadata``: the models' metadata (default: ``[tool.vestige] models``);
- ``vestige_row_values``: ``{table: {column: value}}`` for rows the generic row maker
  cannot invent (check constraints, enums of your own);
- ``fast_sqlite``: SQLite without fsync for the test (migration tests run ~8x faster).

Tests:

- ``test_single_head_revision``, ``test_upgrade``, ``test_model_definitions_match_ddl``,
  ``test_up_down_consistency``: pytest-alembic's;
- :func:`test_vestige_check_at_head`: ``vestige check`` after upgrading from empty: at
  head, version tables and their columns match the models, native triggers current;
- :func:`test_up_down_up_keeps_rows`: for every revision, with a row in every table
  (version tables included), downgrade and upgrade again: no row is lost;
- :func:`test_versioning_works_at_every_step`: after every upgrade, every versioned
  table can be versioned. With native versioning (PostgreSQL) an insert, update and
  delete on every versioned table write the right version rows at every revision. With
  Python-side versioning the versions are written by the application's models, which
  describe head only: at every revision each version table must hold its table's
  columns (what the unit of work writes), and at head the insert, update and delete go
  through the models and are checked the same way.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import alembic.config
import pytest
import sqlalchemy as sa
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory
from pytest_alembic import Config as PytestAlembicConfig
from pytest_alembic import MigrationContext, runner
from pytest_alembic.tests.default import (
    test_model_definitions_match_ddl,
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)

from vestige.config import Settings, load_settings, render_url
from vestige.errors import first_line
from vestige.migrations import native, probe
from vestige.migrations.check import check, models_metadata, project_alembic_config
from vestige.registry import import_models
from vestige.versioning.setup import versioning_manager

__all__ = [
    "test_model_definitions_match_ddl",
    "test_single_head_revision",
    "test_up_down_consistency",
    "test_up_down_up_keeps_rows",
    "test_upgrade",
    "test_versioning_works_at_every_step",
    "test_vestige_check_at_head",
]

# --- fixtures ---------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``alembic`` marker the tests carry (when loaded as a plugin)."""
    config.addinivalue_line("markers", "alembic: a migration-history test")


# What env.py sees as sqlalchemy.url and DATABASE_URL while the kit runs: a URL no
# driver answers to, so an env.py that connects by itself fails instead of migrating
# the database those would otherwise name.
SENTINEL_DRIVER = "vestige_testing_sentinel"
SENTINEL_URL = f"{SENTINEL_DRIVER}://scratch-only/do-not-connect"
SCRATCH_PREFIX = "vestige_scratch_"

ENV_PY_ELSEWHERE = (
    "{env_py} does not run the migrations on the scratch database vestige.testing hands "
    "over, so it would migrate another one (nothing was run); in run_migrations_online(), "
    'use config.attributes.get("connection") when it is set, e.g. connectable = '
    'config.attributes.get("connection") or engine_from_config(...) (see docs/migrations.md, '
    "Set-up)"
)
NOT_EMPTY = (
    "alembic_engine must be an empty scratch database, and {url} holds tables ({tables}); "
    "nothing was run: drop the alembic_engine override, the default creates and drops one"
)
NO_SCRATCH = (
    "cannot create a scratch database on {server}: {reason}; let that user create "
    "databases (CREATEDB), or override alembic_engine with an empty database"
)


@pytest.fixture(scope="session")
def vestige_settings() -> Settings:
    """The project's settings, loaded once; override to point the kit elsewhere."""
    return load_settings()


@pytest.fixture
def alembic_config(
    vestige_settings: Settings,
) -> alembic.config.Config | dict[str, Any] | PytestAlembicConfig:
    """The project's Alembic config, read as ``alembic`` reads it; override to change it.

    It never carries the application's database URL: the migrations run on
    ``alembic_engine`` only.
    """
    return project_alembic_config(vestige_settings.project_root)


@pytest.fixture
def alembic_engine(tmp_path: Path, vestige_settings: Settings) -> Iterator[sa.Engine]:
    """A scratch database, created for the test and dropped after it.

    On the backend of the application's database (``DATABASE_URL``, else
    ``[tool.vestige] database_url``): a new database on the same PostgreSQL server, else
    a SQLite file in ``tmp_path``. The application's database itself is never migrated.
    """
    with scratch_database(vestige_settings.database_url, tmp_path) as engine:
        yield engine


@contextmanager
def scratch_database(url: str | sa.URL, directory: Path) -> Iterator[sa.Engine]:
    """Create an empty database beside ``url``'s, yield an engine on it, then drop it.

    Args:
        url: The application's database; only its server is used (PostgreSQL), and for
            any other backend a SQLite file is made instead.
        directory: Where the SQLite file goes.
    """
    server = sa.make_url(url)
    if server.get_backend_name() != "postgresql":
        engine = sa.create_engine(f"sqlite:///{directory / 'vestige-migrations.db'}")
        try:
            yield engine
        finally:
            engine.dispose()
        return
    server = server.set(drivername="postgresql+psycopg2")  # the kit runs synchronously
    # The pid names the test process that made it: one left by a killed run is traceable,
    # and safe to drop once that process is gone.
    name = f"{SCRATCH_PREFIX}{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.DBAPIError as exc:
        admin.dispose()
        reason = first_line(exc)
        pytest.fail(NO_SCRATCH.format(server=render_url(server), reason=reason), pytrace=False)
    engine = sa.create_engine(server.set(database=name))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def alembic_runner(
    alembic_config: alembic.config.Config | dict[str, Any] | PytestAlembicConfig,
    alembic_engine: sa.Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[MigrationContext]:
    """pytest-alembic's runner over ``alembic_config`` and ``alembic_engine``.

    Before anything runs it makes sure the migrations can only reach ``alembic_engine``:
    the engine holds no table, ``sqlalchemy.url`` and ``DATABASE_URL`` name a sentinel,
    and env.py, run up to its ``context.configure()``, is seen to configure a connection
    of ``alembic_engine``. Otherwise the test fails with one line saying what to change.
    """
    tables = sa.inspect(alembic_engine).get_table_names()
    if tables:
        url = render_url(alembic_engine.url)
        pytest.fail(NOT_EMPTY.format(url=url, tables=", ".join(sorted(tables))), pytrace=False)
    monkeypatch.setenv("DATABASE_URL", SENTINEL_URL)
    config = PytestAlembicConfig.from_raw_config(alembic_config)
    with runner(config=config, engine=alembic_engine) as context:
        executor = context.command_executor
        executor.alembic_config.set_main_option("sqlalchemy.url", SENTINEL_URL)
        problem = env_py_problem(executor.alembic_config, executor.script, alembic_engine)
        if problem:
            pytest.fail(problem, pytrace=False)
        yield context


class _Configured(Exception):
    """Stops env.py at its ``context.configure()``: the probe has seen what it needs."""

    def __init__(self, connection: Any) -> None:
        super().__init__("env.py probed")
        self.connection = connection


def _stop_at_configure(connection: Any = None, *args: Any, **kwargs: Any) -> None:
    raise _Configured(connection)


def env_py_problem(
    config: alembic.config.Config, script: ScriptDirectory, engine: sa.Engine
) -> str | None:
    """Run env.py up to ``context.configure()``: does it configure a connection of ``engine``?

    Nothing is migrated: env.py is stopped inside ``context.configure()``. An env.py
    that connects by itself reaches the sentinel URL (and fails there) or configures
    a connection of another engine.

    Returns:
        None when env.py uses ``engine``, else the line :data:`ENV_PY_ELSEWHERE`.

    Raises:
        Exception: Whatever env.py raises on its own before ``context.configure()``.
    """
    elsewhere = ENV_PY_ELSEWHERE.format(env_py=script.env_py_location)
    probe_context = EnvironmentContext(config, script, fn=lambda rev, context: [], dont_mutate=True)
    # env.py's context.configure() calls this instance's configure (alembic's proxy)
    probe_context.configure = _stop_at_configure  # type: ignore[method-assign]
    try:
        with probe_context:
            script.run_env()
    except _Configured as probed:
        connection = probed.connection
        ours = isinstance(connection, sa.Connection) and connection.engine is engine
        return None if ours else elsewhere
    except Exception as exc:
        if SENTINEL_DRIVER in str(exc):
            return elsewhere
        raise
    return elsewhere  # env.py never configured a connection


@pytest.fixture
def vestige_metadata(vestige_settings: Settings) -> sa.MetaData:
    """The versioned models' metadata, from ``[tool.vestige] models``."""
    import_models(vestige_settings.models, vestige_settings.project_root)
    return models_metadata()


@pytest.fixture
def fast_sqlite() -> Iterator[None]:
    """SQLite without fsync while the test runs (``PRAGMA synchronous=OFF``).

    Migrations commit DDL statement by statement; on SQLite most of their time is spent
    waiting for the disk, which a throwaway test database does not need. Use it with
    ``pytestmark = pytest.mark.usefixtures("fast_sqlite")``.
    """
    sa.event.listen(sa.pool.Pool, "connect", _synchronous_off)
    yield
    sa.event.remove(sa.pool.Pool, "connect", _synchronous_off)


def _synchronous_off(dbapi_connection: Any, record: Any) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.execute("PRAGMA synchronous=OFF")


@pytest.fixture
def vestige_row_values() -> Mapping[str, Mapping[str, Any]]:
    """Column values the generic row maker should use: ``{table: {column: value}}``."""
    return {}


# --- tests ------------------------------------------------------------------------------


def _alembic_config(runner_: MigrationContext) -> alembic.config.Config:
    config: alembic.config.Config = runner_.command_executor.alembic_config
    return config


@pytest.mark.alembic
def test_vestige_check_at_head(
    alembic_runner: MigrationContext, alembic_engine: sa.Engine, vestige_metadata: sa.MetaData
) -> None:
    """From empty to head, then ``vestige check``: no finding."""
    alembic_runner.migrate_up_to("heads", return_current=False)
    report = check(_alembic_config(alembic_runner), alembic_engine, vestige_metadata)
    assert not report.findings, "vestige check found:\n" + "\n".join(
        finding.line() for finding in report.findings
    )


@pytest.mark.alembic
def test_up_down_up_keeps_rows(
    alembic_runner: MigrationContext,
    alembic_engine: sa.Engine,
    vestige_row_values: Mapping[str, Mapping[str, Any]],
) -> None:
    """Every revision, with rows in every table, goes down and up again keeping them."""
    maker = probe.RowMaker(vestige_row_values)
    revisions = [r for r in alembic_runner.history.revisions if r not in ("base", "heads")]
    problems: list[str] = []
    for revision in revisions:
        alembic_runner.migrate_up_to(revision, return_current=False)
        with alembic_engine.begin() as connection:
            maker.fill(connection)
        before = probe.row_keys(alembic_engine)
        alembic_runner.migrate_down_one()
        down = probe.row_keys(alembic_engine)
        problems += probe.lost_rows(revision, "downgrade", before, down)
        alembic_runner.migrate_up_one()
        problems += probe.lost_rows(
            revision, "upgrade after downgrade", down, probe.row_keys(alembic_engine)
        )
    assert not problems, "\n".join(problems)


@pytest.mark.alembic
def test_versioning_works_at_every_step(
    alembic_runner: MigrationContext,
    alembic_engine: sa.Engine,
    vestige_metadata: sa.MetaData,
    vestige_row_values: Mapping[str, Mapping[str, Any]],
) -> None:
    """After every upgrade, every versioned table can be versioned (see module docs)."""
    triggers = set(native.expected_audit_triggers(vestige_metadata, versioning_manager))
    natively = alembic_engine.dialect.name == "postgresql" and bool(triggers)
    excluded = probe.excluded_columns(vestige_metadata)
    maker = probe.RowMaker(vestige_row_values)  # one for all rounds: new keys every round
    revisions = [r for r in alembic_runner.history.revisions if r not in ("base", "heads")]
    problems: list[str] = []
    for revision in revisions:
        alembic_runner.migrate_up_to(revision, return_current=False)
        problems += probe.unversionable(revision, alembic_engine, excluded)
        if natively:
            problems += probe.native_round(revision, alembic_engine, triggers, maker)
    if not natively and revisions:
        problems += probe.orm_round(
            revisions[-1], alembic_engine, vestige_metadata, vestige_row_values
        )
    assert not problems, "\n".join(problems)
