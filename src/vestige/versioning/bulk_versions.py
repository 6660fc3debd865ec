"""The guard's ``version`` mode: bulk statements write their versions and close the old ones.

An ORM-enabled UPDATE or DELETE (and an INSERT of a versioned model) run in ``version``
mode reads the keys of the rows it touches, and writes their versions in the same
transaction through the unit of work's row plans (:mod:`vestige.versioning.row_plans`):
each table a record is stored in is copied into its version table, and the previous
versions are closed, by the same statements a flush executes. Which tables those are
(joined inheritance) and how the record's key maps onto them is the catalogue's
(:mod:`vestige.catalogue`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy_continuum import VersioningManager
from sqlalchemy_continuum.operation import Operation

from vestige.catalogue import Level, VersionedModel, require_versioned
from vestige.errors import UnversionedWriteError
from vestige.versioning.keys import key_chunks, match_keys
from vestige.versioning.row_plans import CloseTarget, close_statements, level_plans

__all__ = [
    "JOINED_DELETE_MESSAGE",
    "JOINED_INSERT_MESSAGE",
    "JOINED_KEY_MESSAGE",
    "RETURNING_MESSAGE",
    "UNCASCADED_DELETE_MESSAGE",
    "UNTYPED_MESSAGE",
    "version_statement",
]

JOINED_KEY_MESSAGE = (
    "UPDATE on {model} changes primary keys of records stored in several tables (joined "
    'inheritance): bulk_writes = "version" cannot version that; change the objects '
    "through the session"
)
JOINED_DELETE_MESSAGE = (
    "DELETE on {model} deletes its {table} rows only, not their {base} rows (joined "
    'inheritance): bulk_writes = "version" refuses it; delete the objects through the '
    "session, or run delete({base}) with ON DELETE CASCADE foreign keys"
)
UNCASCADED_DELETE_MESSAGE = (
    "DELETE on {model} matches {subclass} rows, whose {table} rows it would leave behind "
    '(that foreign key has no ON DELETE CASCADE): bulk_writes = "version" refuses it; '
    "delete the objects through the session, or make the foreign key cascade"
)
UNTYPED_MESSAGE = (
    "{operation} on {model}: its subclasses have tables of their own and no polymorphic_on "
    'column tells their rows apart, so bulk_writes = "version" cannot version it; change '
    "the objects through the session"
)
JOINED_INSERT_MESSAGE = (
    "INSERT on {model} writes several tables (joined inheritance) and its parameters do "
    'not give every primary key: bulk_writes = "version" cannot tell which rows it wrote; '
    "pass the primary keys in the parameters, or add the objects through the session"
)
RETURNING_MESSAGE = (
    "INSERT on {model} has its own RETURNING and does not give every primary key: "
    'bulk_writes = "version" cannot tell which rows it wrote; pass the primary keys '
    "in the parameters or drop the RETURNING"
)


# A record's key: the values of its mapper's primary key (the base table's columns).
_Key = tuple[Any, ...]


def _entry(manager: VersioningManager, mapper: orm.Mapper[Any]) -> VersionedModel:
    """The catalogue's entry for a versioned mapper (asked anew: subclasses may be mapped later)."""
    return require_versioned(mapper.class_, manager)


def _transaction_id(manager: VersioningManager, session: orm.Session) -> int:
    uow = manager.unit_of_work(session)
    if uow.current_transaction is None:
        uow.create_transaction(session)
    return cast(int, uow.current_transaction.id)


def version_statement(
    state: orm.ORMExecuteState,
    manager: VersioningManager,
    mapper: orm.Mapper[Any],
    operation: str,
) -> Any:
    connection = state.session.connection()
    if operation == "INSERT":
        return _version_insert(state, connection, manager, mapper)
    model = mapper.class_.__name__
    entry = _entry(manager, mapper)
    changes = _key_changes(state.statement, entry) if operation == "UPDATE" else {}
    joined = len(entry.levels) > 1 or entry.has_subtables
    if changes and joined:
        raise UnversionedWriteError(JOINED_KEY_MESSAGE.format(model=model))
    if operation == "DELETE" and entry.levels[0].table is not entry.table:
        raise UnversionedWriteError(
            JOINED_DELETE_MESSAGE.format(
                model=model, table=entry.table.name, base=entry.root.__name__
            )
        )
    if entry.has_subtables and entry.discriminator is None:
        raise UnversionedWriteError(UNTYPED_MESSAGE.format(operation=operation, model=model))
    rows = _matching_rows(state, connection, entry, changes)
    by_mapper: dict[orm.Mapper[Any], tuple[Level, ...]] = {}
    for _, _, row_mapper in rows:
        if row_mapper not in by_mapper:
            by_mapper[row_mapper] = _entry(manager, row_mapper).levels
    if operation == "DELETE":
        _refuse_uncascaded_delete(mapper, by_mapper)
    tx_id = _transaction_id(manager, state.session)

    def write(operation_type: int, which: Iterable[tuple[_Key, orm.Mapper[Any]]]) -> None:
        groups: dict[str, tuple[Level, list[_Key]]] = {}
        for key, row_mapper in which:
            for level in by_mapper[row_mapper]:
                groups.setdefault(level.table.fullname, (level, []))[1].append(key)
        for level, keys in groups.values():
            _write_versions(connection, manager, level, level.keys(keys), tx_id, operation_type)

    if operation == "DELETE":
        write(Operation.DELETE, ((key, m) for key, _, m in rows))
        return None
    moved = [(key, new, m) for key, new, m in rows if new != key]
    # A changed key is a delete of the old record and an insert of the new one.
    write(Operation.DELETE, ((key, m) for key, _, m in moved))
    result = state.invoke_statement()
    write(Operation.UPDATE, ((key, m) for key, new, m in rows if new == key))
    write(Operation.INSERT, ((new, m) for _, new, m in moved))
    return result


def _key_changes(statement: Any, entry: VersionedModel) -> dict[int, Any]:
    """What an UPDATE sets the record key to, by key position: empty when it keeps keys.

    A primary key column of a subclass's own table counts as a key change too.
    """
    # SQLAlchemy has no public accessor for an UPDATE's SET clause.
    values = dict(getattr(statement, "_values", None) or {})
    values.update(getattr(statement, "_ordered_values", None) or ())
    mapper: orm.Mapper[Any] = sa.inspect(entry.model)
    record_key = entry.key_columns
    tables = {table.name for table in mapper.tables}
    changes: dict[int, Any] = {}
    for target, value in values.items():
        column: Any = mapper.columns.get(target) if isinstance(target, str) else target
        if not getattr(column, "primary_key", False) or column.table.name not in tables:
            continue
        same = [
            i
            for i, key in enumerate(record_key)
            if key.name == column.name and key.table.name == column.table.name
        ]
        # A subclass table's own key column: not in the record key, a change all the same.
        changes[same[0] if same else len(record_key)] = value
    return changes


def _matching_rows(
    state: orm.ORMExecuteState,
    connection: sa.Connection,
    entry: VersionedModel,
    changes: dict[int, Any],
) -> list[tuple[_Key, _Key, orm.Mapper[Any]]]:
    """The records an UPDATE or DELETE will change: (key, key after, mapper) each.

    Selected through the ORM, so a single-table subclass's statement matches only its
    rows; on PostgreSQL they are locked, in primary-key order. The mapper is the
    record's own class, told by the ``polymorphic_on`` column when subclasses have
    tables of their own.
    """
    mapper: orm.Mapper[Any] = sa.inspect(entry.model)
    record_key = entry.key_columns
    attributes = [getattr(entry.model, key) for key in entry.key_attributes]
    subtables = entry.has_subtables
    keys = _params_keys(state.parameters, entry)
    if keys is not None and not subtables and not changes:
        return [(key, key, mapper) for key in keys]
    columns: list[Any] = list(attributes)
    if changes:  # the keys after the statement, computed from the rows as they are now
        columns += [
            sa.type_coerce(changes[i], key.type) if i in changes else attribute
            for i, (key, attribute) in enumerate(zip(record_key, attributes, strict=True))
        ]
    if subtables:
        columns.append(entry.discriminator)
    dialect = connection.dialect.name
    queries: list[tuple[sa.Select[Any], dict[str, Any] | None]]
    if keys is not None:
        queries = [
            (sa.select(*columns).where(match_keys(record_key, chunk, dialect)), None)
            for chunk in key_chunks(keys, len(record_key), dialect)
        ]
    else:
        query = sa.select(*columns)
        whereclause = getattr(state.statement, "whereclause", None)
        if whereclause is not None:
            query = query.where(whereclause)
        parameters = state.parameters if isinstance(state.parameters, dict) else None
        queries = [(query, parameters)]
    width = len(record_key)
    rows: dict[_Key, tuple[_Key, _Key, orm.Mapper[Any]]] = {}
    for query, parameters in queries:
        query = query.order_by(*attributes)
        if dialect == "postgresql":
            query = query.with_for_update(of=mapper.local_table)
        for row in connection.execute(query, parameters):
            key = tuple(row[:width])
            new = tuple(row[width : 2 * width]) if changes else key
            row_mapper = mapper.polymorphic_map.get(row[-1], mapper) if subtables else mapper
            rows[key] = (key, new, row_mapper)
    return list(rows.values())


def _refuse_uncascaded_delete(
    mapper: orm.Mapper[Any], by_mapper: dict[orm.Mapper[Any], tuple[Level, ...]]
) -> None:
    """A DELETE of base rows whose subclass rows the database would not delete with them."""
    for row_mapper, levels in by_mapper.items():
        parents = {cast(sa.Table, mapper.local_table).name}
        for level in levels:
            if level.table.name in parents:
                continue
            cascades = any(
                (fk.ondelete or "").upper() == "CASCADE" and fk.column.table.name in parents
                for fk in level.table.foreign_keys
            )
            if not cascades:
                raise UnversionedWriteError(
                    UNCASCADED_DELETE_MESSAGE.format(
                        model=mapper.class_.__name__,
                        subclass=row_mapper.class_.__name__,
                        table=level.table.name,
                    )
                )
            parents.add(level.table.name)


def _version_insert(
    state: orm.ORMExecuteState,
    connection: sa.Connection,
    manager: VersioningManager,
    mapper: orm.Mapper[Any],
) -> Any:
    entry = _entry(manager, mapper)
    keys = _params_keys(state.parameters, entry)
    if keys is not None:
        result = state.invoke_statement()
    else:
        model = mapper.class_.__name__
        if len(entry.levels) > 1:
            raise UnversionedWriteError(JOINED_INSERT_MESSAGE.format(model=model))
        statement = state.statement
        if getattr(statement, "_returning", ()):
            raise UnversionedWriteError(RETURNING_MESSAGE.format(model=model))
        returning = cast(sa.Insert, statement).returning(*entry.key_columns)
        frozen = state.invoke_statement(statement=returning).freeze()
        keys = {tuple(row) for row in frozen().all()}
        result = frozen()
    tx_id = _transaction_id(manager, state.session)
    for level in entry.levels:
        _write_versions(connection, manager, level, level.keys(keys), tx_id, Operation.INSERT)
    return result


def _params_keys(parameters: Any, entry: VersionedModel) -> set[_Key] | None:
    """Primary keys from executemany parameters that all carry them, else ``None``."""
    if not parameters:
        return None
    rows = parameters if isinstance(parameters, list | tuple) else [parameters]
    keys: set[_Key] = set()
    for row in rows:
        names = [part.attribute if part.attribute in row else part.column.key for part in entry.key]
        if not all(name in row for name in names):
            return None
        keys.add(tuple(row[name] for name in names))
    return keys


def _write_versions(
    connection: sa.Connection,
    manager: VersioningManager,
    level: Level,
    keys: Iterable[tuple[Any, ...]],
    tx_id: int,
    operation: int,
) -> None:
    """Version the rows ``keys`` of ``level.table`` as they are now, in transaction ``tx_id``.

    Through the row plans a flush uses: a record already versioned in this transaction
    keeps its one version, refreshed; the others are copied, and their previous
    versions closed.
    """
    dialect = connection.dialect.name
    copy, close = level_plans(manager, level)
    keys = list(keys)
    current = copy.written(connection, keys, tx_id)
    if current:
        for statement, params in copy.refresh_statements(current, operation, tx_id, dialect):
            connection.execute(statement, params)
    fresh = [key for key in keys if key not in current] if current else keys
    if not fresh:
        return
    upsert = close is not None and operation == Operation.INSERT
    for statement, params in copy.copy_statements(fresh, operation, tx_id, dialect, upsert=upsert):
        connection.execute(statement, params)
    if close is not None:
        target = CloseTarget.like(close)
        target.keys.update(fresh)
        for statement, params in close_statements(target, tx_id, dialect):
            connection.execute(statement, params)
