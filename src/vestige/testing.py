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

import datetime
import decimal
import sqlite3
import uuid
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
from sqlalchemy import orm

from vestige import native
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

INSERT, UPDATE, DELETE = 0, 1, 2
LOST_ROWS = "revision {revision}: {step} lost rows of {table}: {rows}"
UNVERSIONABLE = (
    "revision {revision}: {table} has columns its version table {version_table} lacks: "
    "{columns}; versions written at this revision cannot record them"
)
WRONG_VERSIONS = (
    "revision {revision}: an insert, update and delete of {table} wrote versions {found}, "
    "expected operation types {expected} chained by end_transaction_id"
)


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
    maker = _RowMaker(vestige_row_values)
    revisions = [r for r in alembic_runner.history.revisions if r not in ("base", "heads")]
    problems: list[str] = []
    for revision in revisions:
        alembic_runner.migrate_up_to(revision, return_current=False)
        with alembic_engine.begin() as connection:
            maker.fill(connection)
        before = _rows(alembic_engine)
        alembic_runner.migrate_down_one()
        down = _rows(alembic_engine)
        problems += _lost(revision, "downgrade", before, down)
        alembic_runner.migrate_up_one()
        problems += _lost(revision, "upgrade after downgrade", down, _rows(alembic_engine))
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
    excluded = _excluded(vestige_metadata)
    maker = _RowMaker(vestige_row_values)  # one for all rounds: new keys every round
    revisions = [r for r in alembic_runner.history.revisions if r not in ("base", "heads")]
    problems: list[str] = []
    for revision in revisions:
        alembic_runner.migrate_up_to(revision, return_current=False)
        problems += _structure(revision, alembic_engine, excluded)
        if natively:
            problems += _native_round(revision, alembic_engine, triggers, maker)
    if not natively and revisions:
        problems += _orm_round(revisions[-1], alembic_engine, vestige_metadata, vestige_row_values)
    assert not problems, "\n".join(problems)


# --- helpers ----------------------------------------------------------------------------


def _reflect(engine: sa.Engine) -> sa.MetaData:
    metadata = sa.MetaData()
    metadata.reflect(engine)
    if "alembic_version" in metadata.tables:
        metadata.remove(metadata.tables["alembic_version"])
    return metadata


def _rows(engine: sa.Engine) -> dict[str, set[tuple[Any, ...]]]:
    metadata = _reflect(engine)
    found: dict[str, set[tuple[Any, ...]]] = {}
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            key = list(table.primary_key.columns) or list(table.columns)
            found[table.name] = {tuple(row) for row in connection.execute(sa.select(*key))}
    return found


def _lost(
    revision: str,
    step: str,
    before: dict[str, set[tuple[Any, ...]]],
    after: dict[str, set[tuple[Any, ...]]],
) -> list[str]:
    problems = []
    for table, rows in sorted(before.items()):
        if table in after and rows - after[table]:
            missing = sorted(rows - after[table], key=repr)
            problems.append(
                LOST_ROWS.format(revision=revision, step=step, table=table, rows=missing)
            )
    return problems


def _version_pairs(metadata: sa.MetaData) -> list[tuple[sa.Table, sa.Table]]:
    return [
        (table, metadata.tables[f"{table.name}_version"])
        for table in metadata.sorted_tables
        if f"{table.name}_version" in metadata.tables
    ]


def _excluded(metadata: sa.MetaData) -> dict[str, set[str]]:
    """Columns each versioned table's model leaves out of its versions (``exclude``)."""
    found: dict[str, set[str]] = {}
    for cls, table in _versioned_classes(metadata).items():
        mapper = sa.inspect(cls)
        found[table] = {
            column.name
            for column in mapper.columns
            if versioning_manager.is_excluded_column(cls, column)
        }
    return found


def _versioned_classes(metadata: sa.MetaData) -> dict[type[Any], str]:
    found: dict[type[Any], str] = {}
    for cls in versioning_manager.version_class_map:
        table = sa.inspect(cls).local_table
        if isinstance(table, sa.Table) and table.metadata is metadata:
            found[cls] = table.name
    return found


def _structure(revision: str, engine: sa.Engine, excluded: Mapping[str, set[str]]) -> list[str]:
    problems = []
    for table, version_table in _version_pairs(_reflect(engine)):
        skip = excluded.get(table.name, set())
        missing = sorted(set(table.c.keys()) - set(version_table.c.keys()) - skip)
        if missing:
            problems.append(
                UNVERSIONABLE.format(
                    revision=revision,
                    table=table.name,
                    version_table=version_table.name,
                    columns=", ".join(missing),
                )
            )
    return problems


class _RowMaker:
    """Invents one row per table, with values of the columns' types and live foreign keys."""

    def __init__(self, overrides: Mapping[str, Mapping[str, Any]]) -> None:
        self.overrides = overrides
        self.counter = 0
        self.filled: dict[str, dict[str, Any]] = {}

    def values(self, table: sa.Table, made: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        self.counter += 1
        values: dict[str, Any] = {}
        for column in table.columns:
            foreign = next(iter(column.foreign_keys), None)
            if foreign is not None:
                parent = made.get(foreign.column.table.name)
                values[column.name] = parent.get(foreign.column.name) if parent else None
                continue
            if column.primary_key and table.name == "transaction":
                continue
            values[column.name] = _value(column, 10_000 + self.counter)
        values.update(self.overrides.get(table.name, {}))
        return values

    def fill(self, connection: sa.Connection) -> None:
        """Insert a row into every empty table (a downgrade may have dropped and re-made it).

        A table that has rows lends its first one to the foreign keys of the tables after it.
        """
        metadata = sa.MetaData()
        metadata.reflect(connection)
        for table in metadata.sorted_tables:
            if table.name == "alembic_version":
                continue
            existing = connection.execute(sa.select(table).limit(1)).mappings().first()
            if existing is not None:
                self.filled[table.name] = dict(existing)
                continue
            values = self.values(table, self.filled)
            connection.execute(table.insert().values(**values))
            self.filled[table.name] = values


def _value(column: sa.Column[Any], number: int) -> Any:
    kind = column.type
    try:
        python_type = kind.python_type
    except NotImplementedError:
        return None
    if isinstance(kind, sa.Enum) and kind.enums:
        return kind.enums[0]
    if python_type is bool:
        return False
    if python_type is int:
        return number if not isinstance(kind, sa.SmallInteger) else number % 30_000
    if python_type is str:
        length = getattr(kind, "length", None) or 32
        return f"v{number}"[:length]
    if python_type is datetime.datetime:
        return datetime.datetime(2020, 1, 1) + datetime.timedelta(seconds=number)
    if python_type is datetime.date:
        return datetime.date(2020, 1, 1)
    if python_type in (float, decimal.Decimal):
        return python_type(1)
    if python_type is uuid.UUID:
        return uuid.UUID(int=number)
    if python_type is bytes:
        return b"v"
    if python_type in (dict, list):
        return python_type()
    return None


def _changeable(table: sa.Table) -> sa.Column[Any] | None:
    for column in table.columns:
        if not column.primary_key and not column.foreign_keys:
            python_type = getattr(column.type, "python_type", None)
            if python_type in (str, int, bool):
                return column
    return None


def _changed(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str) and value:
        # same length (the column may be at its limit), always a different value
        return value[:-1] + ("y" if value[-1] != "y" else "z")
    return value


def _native_round(
    revision: str,
    engine: sa.Engine,
    triggered: set[str],
    maker: _RowMaker,
) -> list[str]:
    """Insert, update and delete through the triggers, one transaction row each.

    Only tables the models version natively are checked (association tables are versioned
    by the unit of work even in native mode); a revision that forgot a trigger fails.
    """
    metadata = _reflect(engine)
    pairs = [pair for pair in _version_pairs(metadata) if pair[0].name in triggered]
    transaction = metadata.tables.get("transaction")
    if not pairs or transaction is None:
        return []
    made: dict[str, dict[str, Any]] = {}
    base_tables = [t for t in metadata.sorted_tables if not t.name.endswith("_version")]
    base_tables = [t for t in base_tables if t.name != "transaction"]

    def new_transaction(connection: sa.Connection) -> None:
        values = maker.values(transaction, {})
        values = {k: v for k, v in values.items() if not transaction.c[k].foreign_keys}
        connection.execute(transaction.insert().values(**values))

    with engine.begin() as connection:
        new_transaction(connection)
        for table in base_tables:
            made[table.name] = maker.values(table, made)
            connection.execute(table.insert().values(**made[table.name]))
    with engine.begin() as connection:
        new_transaction(connection)
        for table, _ in pairs:
            column = _changeable(table)
            if column is not None:
                connection.execute(
                    table.update()
                    .where(*_pk_criteria(table, made[table.name]))
                    .values({column.name: _changed(made[table.name][column.name])})
                )
    with engine.begin() as connection:
        new_transaction(connection)
        for table in reversed(base_tables):
            connection.execute(table.delete().where(*_pk_criteria(table, made[table.name])))
    problems = []
    with engine.connect() as connection:
        for table, version_table in pairs:
            expected = (
                [INSERT, UPDATE, DELETE] if _changeable(table) is not None else [INSERT, DELETE]
            )
            problems += _versions_problem(
                revision, connection, table, version_table, made[table.name], expected
            )
    return problems


def _pk_criteria(table: sa.Table, values: Mapping[str, Any]) -> list[Any]:
    return [column == values[column.name] for column in table.primary_key.columns]


def _versions_problem(
    revision: str,
    connection: sa.Connection,
    table: sa.Table,
    version_table: sa.Table,
    values: Mapping[str, Any],
    expected: list[int],
) -> list[str]:
    columns = version_table.c
    criteria = [columns[c.name] == values[c.name] for c in table.primary_key.columns]
    selected = [columns.transaction_id, columns.operation_type]
    if "end_transaction_id" in columns:
        selected.append(columns.end_transaction_id)
    rows = connection.execute(
        sa.select(*selected).where(*criteria).order_by(columns.transaction_id)
    ).all()
    operations = [row.operation_type for row in rows]
    chained = "end_transaction_id" not in columns or (
        [row.end_transaction_id for row in rows]
        == [row.transaction_id for row in rows[1:]] + [None]
    )
    if operations == expected and chained:
        return []
    found = [tuple(row) for row in rows]
    return [
        WRONG_VERSIONS.format(revision=revision, table=table.name, found=found, expected=expected)
    ]


def _orm_round(
    revision: str,
    engine: sa.Engine,
    metadata: sa.MetaData,
    overrides: Mapping[str, Mapping[str, Any]],
) -> list[str]:
    """At head, through the models: insert, update and delete, then read the versions."""
    classes = {table: cls for cls, table in _versioned_classes(metadata).items()}
    maker = _RowMaker(overrides)
    made: dict[str, dict[str, Any]] = {}
    objects: list[Any] = []
    tables = [t for t in metadata.sorted_tables if t.name in classes]
    with orm.Session(engine) as session:
        for table in tables:
            made[table.name] = maker.values(table, made)
            mapper = sa.inspect(classes[table.name])
            obj = classes[table.name](
                **{
                    mapper.get_property_by_column(table.c[name]).key: value
                    for name, value in made[table.name].items()
                }
            )
            session.add(obj)
            session.flush()
            objects.append(obj)
        session.commit()
        for table, obj in zip(tables, objects, strict=True):
            column = _changeable(table)
            if column is not None:
                key = sa.inspect(classes[table.name]).get_property_by_column(column).key
                setattr(obj, key, _changed(made[table.name][column.name]))
        session.commit()
        for obj in reversed(objects):
            session.delete(obj)
        session.commit()
    reflected = _reflect(engine)
    problems = []
    with engine.connect() as connection:
        for table in tables:
            version_name = versioning_manager.option(classes[table.name], "table_name") % table.name
            expected = (
                [INSERT, UPDATE, DELETE] if _changeable(table) is not None else [INSERT, DELETE]
            )
            problems += _versions_problem(
                revision,
                connection,
                reflected.tables[table.name],
                reflected.tables[version_name],
                made[table.name],
                expected,
            )
    return problems
