"""The guard's ``version`` mode: bulk statements write their versions and close the old ones.

One module of about 450 lines: the statement's rows, their keys and their versions are
one algorithm (find the rows a statement touches, then version them set-based).

An ORM-enabled UPDATE or DELETE (and an INSERT of a versioned model) run in ``version``
mode reads the keys of the rows it touches, and writes their versions in the same
transaction, closing the previous ones with the unit of work's close statements
(:mod:`vestige.versioning.row_plans`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy_continuum import VersioningManager, version_class
from sqlalchemy_continuum.operation import Operation
from sqlalchemy_continuum.utils import end_tx_column_name, tx_column_name

from vestige.errors import UnversionedWriteError
from vestige.versioning.keys import key_chunks, match_keys
from vestige.versioning.row_plans import CloseTarget, close_statements

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


# --- version mode -----------------------------------------------------------------------

# A record's key: the values of its mapper's primary key (the base table's columns).
_Key = tuple[Any, ...]


@dataclass(frozen=True)
class _Target:
    """One table a record is stored in, and its version table."""

    table: sa.Table
    version_cls: type
    version_table: sa.Table
    pk: list[sa.Column[Any]]
    tx: sa.Column[Any]
    end_tx: sa.Column[Any] | None
    # Where each of ``pk`` sits in the record's key.
    positions: tuple[int, ...]

    def keys(self, records: Iterable[_Key]) -> list[_Key]:
        """The records' keys as this table's primary key."""
        return [tuple(record[i] for i in self.positions) for record in records]


def _targets(manager: VersioningManager, mapper: orm.Mapper[Any]) -> list[_Target]:
    """The tables ``mapper``'s records are stored in, base first, with their version tables.

    One table for a plain model or single-table inheritance; one per level of joined
    inheritance, each versioned in its own table as Continuum does for an ORM change.
    """
    record_key = list(mapper.primary_key)
    targets: list[_Target] = []
    seen: set[str] = set()
    for owner in reversed(list(mapper.iterate_to_root())):
        table = owner.local_table
        if not isinstance(table, sa.Table) or table.fullname in seen:
            continue
        if owner.class_ not in manager.version_class_map:
            continue
        seen.add(table.fullname)
        version_cls = version_class(owner.class_)
        version_table = version_cls.__table__
        validity = manager.option(owner.class_, "strategy") == "validity"
        targets.append(
            _Target(
                table=table,
                version_cls=version_cls,
                version_table=version_table,
                pk=list(table.primary_key),
                tx=version_table.c[tx_column_name(owner.class_)],
                end_tx=version_table.c[end_tx_column_name(owner.class_)] if validity else None,
                positions=tuple(
                    _key_position(column, i, record_key)
                    for i, column in enumerate(table.primary_key)
                ),
            )
        )
    return targets


def _key_position(column: sa.Column[Any], index: int, record_key: list[Any]) -> int:
    """Which column of the record key ``column`` holds: the one its foreign keys lead to.

    A joined subclass's key refers to its parent's (``invoice.id -> document.id``);
    without such a chain, the column at the same place.
    """
    found: sa.Column[Any] = column
    for _ in range(len(record_key) + 16):
        for position, key_column in enumerate(record_key):
            if found is key_column:
                return position
        referred = [fk.column for fk in found.foreign_keys]
        if len(referred) != 1:
            break
        found = referred[0]
    return index


def _pk_attributes(mapper: orm.Mapper[Any]) -> list[str]:
    return [mapper.get_property_by_column(c).key for c in mapper.primary_key]


def _has_subtables(mapper: orm.Mapper[Any]) -> bool:
    """Whether some subclass of ``mapper`` stores its records in a table of its own."""
    return any(m.local_table is not mapper.local_table for m in mapper.self_and_descendants)


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
    changes = _key_changes(state.statement, mapper) if operation == "UPDATE" else {}
    joined = len(_targets(manager, mapper)) > 1 or _has_subtables(mapper)
    if changes and joined:
        raise UnversionedWriteError(JOINED_KEY_MESSAGE.format(model=model))
    base = mapper.base_mapper
    if operation == "DELETE" and mapper.local_table is not base.local_table:
        raise UnversionedWriteError(
            JOINED_DELETE_MESSAGE.format(
                model=model, table=_table_name(mapper), base=base.class_.__name__
            )
        )
    if _has_subtables(mapper) and mapper.polymorphic_on is None:
        raise UnversionedWriteError(UNTYPED_MESSAGE.format(operation=operation, model=model))
    rows = _matching_rows(state, connection, mapper, changes)
    by_mapper: dict[orm.Mapper[Any], list[_Target]] = {}
    for _, _, row_mapper in rows:
        if row_mapper not in by_mapper:
            by_mapper[row_mapper] = _targets(manager, row_mapper)
    if operation == "DELETE":
        _refuse_uncascaded_delete(mapper, by_mapper)
    tx_id = _transaction_id(manager, state.session)

    def write(operation_type: int, which: Iterable[tuple[_Key, orm.Mapper[Any]]]) -> None:
        groups: dict[str, tuple[_Target, list[_Key]]] = {}
        for key, row_mapper in which:
            for target in by_mapper[row_mapper]:
                groups.setdefault(target.table.fullname, (target, []))[1].append(key)
        for target, keys in groups.values():
            _write_versions(connection, target, target.keys(keys), tx_id, operation_type)

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


def _table_name(mapper: orm.Mapper[Any]) -> str:
    return cast(sa.Table, mapper.local_table).name


def _key_changes(statement: Any, mapper: orm.Mapper[Any]) -> dict[int, Any]:
    """What an UPDATE sets the record key to, by key position: empty when it keeps keys.

    A primary key column of a subclass's own table counts as a key change too.
    """
    # SQLAlchemy has no public accessor for an UPDATE's SET clause.
    values = dict(getattr(statement, "_values", None) or {})
    values.update(getattr(statement, "_ordered_values", None) or ())
    record_key = list(mapper.primary_key)
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
    mapper: orm.Mapper[Any],
    changes: dict[int, Any],
) -> list[tuple[_Key, _Key, orm.Mapper[Any]]]:
    """The records an UPDATE or DELETE will change: (key, key after, mapper) each.

    Selected through the ORM, so a single-table subclass's statement matches only its
    rows; on PostgreSQL they are locked, in primary-key order. The mapper is the
    record's own class, told by the ``polymorphic_on`` column when subclasses have
    tables of their own.
    """
    record_key = list(mapper.primary_key)
    attributes = [getattr(mapper.class_, key) for key in _pk_attributes(mapper)]
    subtables = _has_subtables(mapper)
    keys = _params_keys(state.parameters, mapper)
    if keys is not None and not subtables and not changes:
        return [(key, key, mapper) for key in keys]
    columns: list[Any] = list(attributes)
    if changes:  # the keys after the statement, computed from the rows as they are now
        columns += [
            sa.type_coerce(changes[i], key.type) if i in changes else attribute
            for i, (key, attribute) in enumerate(zip(record_key, attributes, strict=True))
        ]
    if subtables:
        columns.append(mapper.polymorphic_on)
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
    mapper: orm.Mapper[Any], by_mapper: dict[orm.Mapper[Any], list[_Target]]
) -> None:
    """A DELETE of base rows whose subclass rows the database would not delete with them."""
    for row_mapper, targets in by_mapper.items():
        parents = {_table_name(mapper)}
        for target in targets:
            if target.table.name in parents:
                continue
            cascades = any(
                (fk.ondelete or "").upper() == "CASCADE" and fk.column.table.name in parents
                for fk in target.table.foreign_keys
            )
            if not cascades:
                raise UnversionedWriteError(
                    UNCASCADED_DELETE_MESSAGE.format(
                        model=mapper.class_.__name__,
                        subclass=row_mapper.class_.__name__,
                        table=target.table.name,
                    )
                )
            parents.add(target.table.name)


def _version_insert(
    state: orm.ORMExecuteState,
    connection: sa.Connection,
    manager: VersioningManager,
    mapper: orm.Mapper[Any],
) -> Any:
    targets = _targets(manager, mapper)
    keys = _params_keys(state.parameters, mapper)
    if keys is not None:
        result = state.invoke_statement()
    else:
        model = mapper.class_.__name__
        if len(targets) > 1:
            raise UnversionedWriteError(JOINED_INSERT_MESSAGE.format(model=model))
        statement = state.statement
        if getattr(statement, "_returning", ()):
            raise UnversionedWriteError(RETURNING_MESSAGE.format(model=model))
        returning = cast(sa.Insert, statement).returning(*mapper.primary_key)
        frozen = state.invoke_statement(statement=returning).freeze()
        keys = {tuple(row) for row in frozen().all()}
        result = frozen()
    tx_id = _transaction_id(manager, state.session)
    for target in targets:
        _write_versions(connection, target, target.keys(keys), tx_id, Operation.INSERT)
    return result


def _params_keys(parameters: Any, mapper: orm.Mapper[Any]) -> set[_Key] | None:
    """Primary keys from executemany parameters that all carry them, else ``None``."""
    if not parameters:
        return None
    rows = parameters if isinstance(parameters, list | tuple) else [parameters]
    keys: set[_Key] = set()
    for row in rows:
        pairs = zip(_pk_attributes(mapper), mapper.primary_key, strict=True)
        names = [attribute if attribute in row else column.key for attribute, column in pairs]
        if not all(name in row for name in names):
            return None
        keys.add(tuple(row[name] for name in names))
    return keys


def _write_versions(
    connection: sa.Connection,
    target: _Target,
    keys: Iterable[tuple[Any, ...]],
    tx_id: int,
    operation: int,
) -> None:
    """Version the rows ``keys`` of ``target.table`` as they are now, in transaction ``tx_id``."""
    dialect = connection.dialect.name
    version = target.version_table
    version_by_name = {c.name: c for c in version.c}
    version_pk = [version_by_name[c.name] for c in target.pk]
    for chunk in key_chunks(keys, len(target.pk), dialect):
        # A record already versioned in this transaction keeps its one version, refreshed.
        current = {
            tuple(row)
            for row in connection.execute(
                sa.select(*version_pk).where(
                    target.tx == tx_id, match_keys(version_pk, chunk, dialect)
                )
            )
        }
        if current:
            refreshed: dict[Any, Any] = {v: base for v, base in _copied(target)}
            if operation == Operation.DELETE:
                refreshed[version.c.operation_type] = sa.literal(operation)
            elif operation == Operation.INSERT:
                # Deleted and inserted again in one transaction: an update, as Continuum's
                # Operations.add_insert records it.
                deleted = version.c.operation_type == Operation.DELETE
                refreshed[version.c.operation_type] = sa.case(
                    (deleted, sa.literal(Operation.UPDATE)), else_=version.c.operation_type
                )
            connection.execute(
                version.update()
                .where(
                    target.tx == tx_id,
                    *(v == c for v, c in zip(version_pk, target.pk, strict=True)),
                    match_keys(target.pk, sorted(current), dialect),
                )
                .values(refreshed)
            )
        fresh = [key for key in chunk if key not in current]
        if not fresh:
            continue
        operation_type: Any = sa.literal(operation)
        if target.end_tx is not None and operation == Operation.INSERT:
            operation_type = _insert_or_update(target, version_pk, tx_id)
        copied = _copied(target)
        columns = [v.key for v, _ in copied] + [target.tx.key, version.c.operation_type.key]
        rows = sa.select(*(base for _, base in copied), sa.literal(tx_id), operation_type).where(
            match_keys(target.pk, fresh, dialect)
        )
        connection.execute(version.insert().from_select(columns, rows))
        if target.end_tx is not None:
            close = CloseTarget(target.version_cls, target.tx.name, target.end_tx.name)
            close.keys.update(fresh)
            for statement, params in close_statements(close, tx_id, dialect):
                connection.execute(statement, params)


def _copied(target: _Target) -> Sequence[tuple[sa.Column[Any], sa.Column[Any]]]:
    """Pairs (version column, base column) of the same name: what a version copies."""
    base = {c.name: c for c in target.table.c}
    return [(c, base[c.name]) for c in target.version_table.c if c.name in base]


def _insert_or_update(target: _Target, version_pk: list[sa.Column[Any]], tx_id: int) -> Any:
    """An upsert of a live record is an UPDATE: it has an open version that is no delete."""
    assert target.end_tx is not None
    live = (
        sa.select(sa.literal(1))
        .where(
            *(v == c for v, c in zip(version_pk, target.pk, strict=True)),
            target.end_tx.is_(None),
            target.tx != tx_id,
            target.version_table.c.operation_type != Operation.DELETE,
        )
        .exists()
    )
    return sa.case((live, sa.literal(Operation.UPDATE)), else_=sa.literal(Operation.INSERT))
