"""Probing a migrated database: invented rows, and whether versioning writes what it should.

Used by :mod:`vestige.testing` at every revision of a history. :class:`RowMaker` invents
one row per table (values of the columns' types, foreign keys pointing at the rows made
before); :func:`native_round` and :func:`orm_round` insert, update and delete a row of
every versioned table (through the triggers, or through the models) and compare the
version rows written with what Continuum should have written.
"""

from __future__ import annotations

import datetime
import decimal
import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from vestige.catalogue import versioned_models
from vestige.versioning.setup import versioning_manager

__all__ = [
    "LOST_ROWS",
    "UNVERSIONABLE",
    "WRONG_VERSIONS",
    "RowMaker",
    "excluded_columns",
    "lost_rows",
    "native_round",
    "orm_round",
    "reflect",
    "row_keys",
    "unversionable",
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


def reflect(engine: sa.Engine) -> sa.MetaData:
    metadata = sa.MetaData()
    metadata.reflect(engine)
    if "alembic_version" in metadata.tables:
        metadata.remove(metadata.tables["alembic_version"])
    return metadata


def row_keys(engine: sa.Engine) -> dict[str, set[tuple[Any, ...]]]:
    metadata = reflect(engine)
    found: dict[str, set[tuple[Any, ...]]] = {}
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            key = list(table.primary_key.columns) or list(table.columns)
            found[table.name] = {tuple(row) for row in connection.execute(sa.select(*key))}
    return found


def lost_rows(
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


def excluded_columns(metadata: sa.MetaData) -> dict[str, set[str]]:
    """Columns each versioned table's model leaves out of its versions (``exclude``)."""
    found: dict[str, set[str]] = {}
    # Single-table subclasses share their base's table: what any of them excludes.
    for entry in versioned_models(versioning_manager).values():
        if entry.table.metadata is metadata:
            found.setdefault(entry.table.name, set()).update(
                column.name
                for column in sa.inspect(entry.model).columns
                if versioning_manager.is_excluded_column(entry.model, column)
            )
    return found


def _versioned_classes(metadata: sa.MetaData) -> dict[str, type[Any]]:
    """One versioned class per table of ``metadata``: the base of a single-table hierarchy."""
    return {
        entry.table.name: entry.model
        for entry in versioned_models(versioning_manager).values()
        if entry.table.metadata is metadata and not entry.single
    }


def unversionable(revision: str, engine: sa.Engine, excluded: Mapping[str, set[str]]) -> list[str]:
    problems = []
    for table, version_table in _version_pairs(reflect(engine)):
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


class RowMaker:
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


def native_round(
    revision: str,
    engine: sa.Engine,
    triggered: set[str],
    maker: RowMaker,
) -> list[str]:
    """Insert, update and delete through the triggers, one transaction row each.

    Only tables the models version natively are checked (association tables are versioned
    by the unit of work even in native mode); a revision that forgot a trigger fails.
    """
    metadata = reflect(engine)
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


def orm_round(
    revision: str,
    engine: sa.Engine,
    metadata: sa.MetaData,
    overrides: Mapping[str, Mapping[str, Any]],
) -> list[str]:
    """At head, through the models: insert, update and delete, then read the versions."""
    classes = _versioned_classes(metadata)
    maker = RowMaker(overrides)
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
    reflected = reflect(engine)
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
