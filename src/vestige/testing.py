"""A pytest plugin that tests a migration history as history: ``vestige.testing``.

Built on `pytest-alembic <https://pytest-alembic.readthedocs.io>`_: its runner moves
through the history and its four checks (single head, upgrade from empty, models match
DDL, up/down consistency) are re-exported here; Vestige adds three that know about
version tables. Enable it in ``conftest.py`` and give it a database, as with
pytest-alembic::

    # conftest.py
    pytest_plugins = ["vestige.testing"]

    @pytest.fixture
    def alembic_engine():            # an empty database; defaults to SQLite in tmp_path
        return sqlalchemy.create_engine("postgresql+psycopg2://...")

    # test_migrations.py
    from vestige.testing import *    # the seven tests below (``__all__`` holds only tests)

The fixtures come with ``pytest_plugins``; without it, import them by name into the test
module (``from vestige.testing import alembic_runner, vestige_metadata, ...``). A star
import never brings fixtures, so it cannot shadow the ``alembic_engine`` of your conftest.
pytest-alembic's own collection hook fails on pytest 9 (0.13.1); vestige.testing does not
need it: add ``-p no:pytest_alembic`` to pytest's ``addopts`` if you see
``'TestCollector' object has no attribute '_nodeid'``.

Fixtures (override any in ``conftest.py``):

- ``alembic_config``: the Alembic config (default: ``alembic.ini`` or ``[tool.alembic]``
  of the project), a ``dict`` or a ``pytest_alembic.Config`` as pytest-alembic takes;
- ``alembic_engine``: the empty database the tests migrate;
- ``alembic_runner``: pytest-alembic's runner over those two;
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

import sqlite3
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import alembic.config
import pytest
import sqlalchemy as sa
from pytest_alembic import Config as PytestAlembicConfig
from pytest_alembic import MigrationContext, runner
from pytest_alembic.tests.default import (
    test_model_definitions_match_ddl,
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)

from vestige import native, probe
from vestige.check import check, models_metadata, project_alembic_config
from vestige.config import load_settings
from vestige.registry import import_models
from vestige.versioning import versioning_manager

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


@pytest.fixture
def alembic_config() -> alembic.config.Config | dict[str, Any] | PytestAlembicConfig:
    """The project's Alembic config; override to point at another history."""
    settings = load_settings()
    return project_alembic_config(settings.project_root, settings.database_url)


@pytest.fixture
def alembic_engine(tmp_path: Path) -> Iterator[sa.Engine]:
    """An empty database for the migration tests; override with your own."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'vestige-migrations.db'}")
    yield engine
    engine.dispose()


@pytest.fixture
def alembic_runner(
    alembic_config: alembic.config.Config | dict[str, Any] | PytestAlembicConfig,
    alembic_engine: sa.Engine,
) -> Iterator[MigrationContext]:
    """pytest-alembic's runner over ``alembic_config`` and ``alembic_engine``."""
    config = PytestAlembicConfig.from_raw_config(alembic_config)
    with runner(config=config, engine=alembic_engine) as context:
        yield context


@pytest.fixture
def vestige_metadata() -> sa.MetaData:
    """The versioned models' metadata, from ``[tool.vestige] models``."""
    settings = load_settings()
    import_models(settings.models, settings.project_root)
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
