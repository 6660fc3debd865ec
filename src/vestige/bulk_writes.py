"""Bulk statements on versioned models: warn, refuse, or version them.

``session.execute(update(Model)...)``, ``delete(Model)`` and bulk ``insert(Model)`` go
straight to the database: Continuum's unit of work never sees them and writes no
versions (its issue #174). Vestige installs a ``do_orm_execute`` guard on every session
with one of three modes, from ``[tool.vestige] bulk_writes`` or passed explicitly:

- ``warn`` (default): the statement runs and :class:`~vestige.errors.UnversionedWriteWarning`
  names the model and the statement.
- ``raise``: :class:`~vestige.errors.UnversionedWriteError` before the statement runs.
- ``version``: the statement runs and Vestige writes the version rows itself, set-based
  (``INSERT ... SELECT`` from the table, ``RETURNING`` for the keys of bulk inserts),
  closing the previous versions, in the same Continuum transaction as the session's
  other changes.

A statement executed with ``execution_options(vestige_unversioned=True)`` is let
through silently in every mode, for deliberate maintenance writes.

``version`` mode writes the versions an ORM change of the same records would:

- An UPDATE that changes primary keys is a delete of each old key and an insert of the
  new one (a key freed and taken again in one transaction is an update, as Continuum
  records it).
- Inheritance: each row is versioned as its own class. Joined inheritance versions every
  table the class is stored in, whether the statement names the base or a subclass;
  a single-table subclass's statement versions only that subclass's rows.
- Refused, with one line saying what to do: a key change in a joined hierarchy, a DELETE
  on a joined subclass (the database deletes its own table's rows only), a DELETE on a
  base that matches rows whose subclass table does not cascade the delete, subclasses
  with tables of their own and no ``polymorphic_on`` column, and a bulk INSERT into
  several tables whose parameters do not give the keys.

It writes no ``transaction_changes`` rows, and versions the rows a bulk UPDATE or DELETE
matched when Vestige selected them just before it ran (through the ORM, so a subclass's
criteria apply; on PostgreSQL they are locked then, in primary-key order).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy_continuum import VersioningManager, version_class
from sqlalchemy_continuum.operation import Operation
from sqlalchemy_continuum.utils import end_tx_column_name, tx_column_name

from vestige.config import Settings, find_pyproject, read_tool_table
from vestige.errors import ConfigError, UnversionedWriteError, UnversionedWriteWarning
from vestige.unit_of_work import CloseTarget, close_statements, key_chunks, match_keys

__all__ = [
    "BULK_WRITE_MODES",
    "SKIP_OPTION",
    "BulkWriteGuard",
    "BulkWriteMode",
    "bulk_write_mode",
    "install_bulk_write_guard",
    "remove_bulk_write_guard",
]

BulkWriteMode = Literal["warn", "raise", "version"]
BULK_WRITE_MODES: tuple[str, ...] = get_args(BulkWriteMode)
DEFAULT_MODE: BulkWriteMode = "warn"
SKIP_OPTION = "vestige_unversioned"

UNVERSIONED_MESSAGE = (
    "{operation} on versioned model {model} bypasses its history: Continuum writes no "
    "{version_table} rows for bulk statements ({statement}); change the objects through "
    'the session, or set [tool.vestige] bulk_writes = "version" (see docs/versioning.md, '
    "Bulk statements)"
)
BAD_MODE_MESSAGE = "[tool.vestige] bulk_writes must be one of {modes}, not {value!r}"
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


def bulk_write_mode(settings: Settings | None = None, value: Any = None) -> BulkWriteMode:
    """The bulk-write mode: ``value`` if given, else the settings', else ``"warn"``.

    Without ``settings`` the nearest ``pyproject.toml`` above the working directory is
    read for ``[tool.vestige] bulk_writes``.

    Raises:
        ConfigError: The mode is not one of ``warn``, ``raise``, ``version``.
    """
    if value is None:
        if settings is not None:
            value = settings.raw.get("bulk_writes")
        else:
            pyproject = find_pyproject()
            value = read_tool_table(pyproject).get("bulk_writes") if pyproject else None
    if value is None:
        return DEFAULT_MODE
    if value not in BULK_WRITE_MODES:
        raise ConfigError(BAD_MODE_MESSAGE.format(modes=", ".join(BULK_WRITE_MODES), value=value))
    return cast(BulkWriteMode, value)


@dataclass(eq=False)
class BulkWriteGuard:
    """The ``do_orm_execute`` listener; see the module documentation.

    Attributes:
        mode: ``warn``, ``raise`` or ``version``; may be changed while installed.
        manager: The Continuum manager whose versioned models are guarded.
    """

    mode: BulkWriteMode
    manager: VersioningManager

    def __call__(self, state: orm.ORMExecuteState) -> Any:
        if not (state.is_update or state.is_delete or state.is_insert):
            return None
        options = self.manager.options
        if state.execution_options.get(SKIP_OPTION) or not options["versioning"]:
            return None
        if options["native_versioning"]:
            return None  # the database's triggers version every statement
        mapper = self._versioned_mapper(state)
        if mapper is None:
            return None
        model = mapper.class_
        operation = "INSERT" if state.is_insert else "UPDATE" if state.is_update else "DELETE"
        if self.mode == "version":
            return _version_statement(state, self.manager, mapper, operation)
        message = UNVERSIONED_MESSAGE.format(
            operation=operation,
            model=model.__name__,
            version_table=_version_table(model).name,
            statement=_describe(state.statement, operation, model),
        )
        if self.mode == "raise":
            raise UnversionedWriteError(message)
        warnings.warn(message, UnversionedWriteWarning, stacklevel=_caller_level())
        return None

    def _versioned_mapper(self, state: orm.ORMExecuteState) -> orm.Mapper[Any] | None:
        """The statement's versioned entity: a subclass's, when it names one."""
        mapper = state.bind_mapper
        if mapper is not None and mapper.class_ in self.manager.version_class_map:
            return mapper
        table = getattr(state.statement, "table", None)
        if not isinstance(table, sa.Table):
            return None
        for model in self.manager.version_class_map:
            found: orm.Mapper[Any] = sa.inspect(model)
            if any(t.fullname == table.fullname for t in found.tables):
                return found.base_mapper if found.single else found
        return None


_installed: BulkWriteGuard | None = None


def install_bulk_write_guard(
    mode: str | None = None,
    *,
    manager: VersioningManager | None = None,
    settings: Settings | None = None,
) -> BulkWriteGuard:
    """Guard bulk statements on versioned models in every session; replaces an earlier guard.

    Args:
        mode: ``warn``, ``raise`` or ``version``; by default ``[tool.vestige] bulk_writes``
            (from ``settings`` or the nearest ``pyproject.toml``), else ``warn``.
        manager: The Continuum manager (default: Continuum's global one).
        settings: Settings to read the mode from.

    Returns:
        The installed guard; set its ``mode`` to change the mode later.
    """
    import sqlalchemy_continuum

    global _installed
    guard = BulkWriteGuard(
        mode=bulk_write_mode(settings, mode),
        manager=manager if manager is not None else sqlalchemy_continuum.versioning_manager,
    )
    remove_bulk_write_guard()
    sa.event.listen(orm.Session, "do_orm_execute", guard)
    _installed = guard
    return guard


def remove_bulk_write_guard() -> None:
    """Remove the installed guard, if any."""
    global _installed
    if _installed is not None:
        sa.event.remove(orm.Session, "do_orm_execute", _installed)
        _installed = None


def _caller_level() -> int:
    """The ``stacklevel`` that points a warning at the code that executed the statement."""
    level, frame = 1, sys._getframe(1)
    while frame.f_back is not None and frame.f_globals.get("__name__", "").startswith(
        ("vestige.", "sqlalchemy.")
    ):
        level, frame = level + 1, frame.f_back
    return level


def _describe(statement: Any, operation: str, model: type) -> str:
    try:
        text = " ".join(str(statement).split())
    except (sa.exc.SQLAlchemyError, KeyError):
        # ORM bulk INSERTs compile only with their parameters.
        return f"{operation.lower()}({model.__name__}) with a list of parameter sets"
    return text if len(text) <= 160 else text[:157] + "..."


def _version_table(model: type) -> sa.Table:
    return cast(sa.Table, version_class(model).__table__)


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


def _version_statement(
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
