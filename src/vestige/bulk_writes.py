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

``version`` mode handles models mapped to one table (joined inheritance is refused with
an explanation), writes no ``transaction_changes`` rows, and versions the rows a bulk
UPDATE or DELETE matched when Vestige selected them just before it ran (on PostgreSQL
they are locked then, in primary-key order).
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
    'the session, or set [tool.vestige] bulk_writes = "version" (see README, Bulk statements)'
)
BAD_MODE_MESSAGE = "[tool.vestige] bulk_writes must be one of {modes}, not {value!r}"
JOINED_MESSAGE = (
    '{operation} on {model}: bulk_writes = "version" cannot version a model mapped to '
    "several tables (joined inheritance); change the objects through the session"
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
        model = self._versioned_model(state.statement)
        if model is None:
            return None
        operation = "INSERT" if state.is_insert else "UPDATE" if state.is_update else "DELETE"
        if self.mode == "version":
            return _version_statement(state, self.manager, model, operation)
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

    def _versioned_model(self, statement: Any) -> type | None:
        table = getattr(statement, "table", None)
        if not isinstance(table, sa.Table):
            return None
        for model in self.manager.version_class_map:
            mapper = sa.inspect(model)
            if any(t.fullname == table.fullname for t in mapper.tables):
                return cast(type, mapper.base_mapper.class_ if mapper.single else model)
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


@dataclass(frozen=True)
class _Target:
    model: type
    table: sa.Table
    version_cls: type
    version_table: sa.Table
    pk: list[sa.Column[Any]]
    pk_attributes: list[str]
    tx: sa.Column[Any]
    end_tx: sa.Column[Any] | None


def _target(manager: VersioningManager, model: type, operation: str) -> _Target:
    mapper: orm.Mapper[Any] = sa.inspect(model)
    if len(mapper.tables) != 1:
        raise UnversionedWriteError(
            JOINED_MESSAGE.format(operation=operation, model=model.__name__)
        )
    table = cast(sa.Table, mapper.local_table)
    version_cls = version_class(model)
    version_table = version_cls.__table__
    validity = manager.option(model, "strategy") == "validity"
    return _Target(
        model=model,
        table=table,
        version_cls=version_cls,
        version_table=version_table,
        pk=list(table.primary_key),
        pk_attributes=[mapper.get_property_by_column(c).key for c in table.primary_key],
        tx=version_table.c[tx_column_name(model)],
        end_tx=version_table.c[end_tx_column_name(model)] if validity else None,
    )


def _version_statement(
    state: orm.ORMExecuteState, manager: VersioningManager, model: type, operation: str
) -> Any:
    target = _target(manager, model, operation)
    session = state.session
    connection = session.connection()
    uow = manager.unit_of_work(session)
    if uow.current_transaction is None:
        uow.create_transaction(session)
    tx_id = uow.current_transaction.id
    statement = state.statement
    if operation == "INSERT":
        return _version_insert(state, connection, target, tx_id)
    keys = _params_keys(state.parameters, target)
    if keys is None:
        parameters = state.parameters if isinstance(state.parameters, dict) else None
        whereclause = getattr(statement, "whereclause", None)
        keys = _matching_keys(connection, target, whereclause, parameters)
    if operation == "DELETE":
        _write_versions(connection, target, keys, tx_id, Operation.DELETE)
        return None
    result = state.invoke_statement()
    _write_versions(connection, target, keys, tx_id, Operation.UPDATE)
    return result


def _version_insert(
    state: orm.ORMExecuteState, connection: sa.Connection, target: _Target, tx_id: int
) -> Any:
    keys = _params_keys(state.parameters, target)
    if keys is not None:
        result = state.invoke_statement()
    else:
        statement = state.statement
        if getattr(statement, "_returning", ()):
            raise UnversionedWriteError(RETURNING_MESSAGE.format(model=target.model.__name__))
        returning = cast(sa.Insert, statement).returning(*target.pk)
        frozen = state.invoke_statement(statement=returning).freeze()
        keys = {tuple(row) for row in frozen().all()}
        result = frozen()
    _write_versions(connection, target, keys, tx_id, Operation.INSERT)
    return result


def _params_keys(parameters: Any, target: _Target) -> set[tuple[Any, ...]] | None:
    """Primary keys from executemany parameters that all carry them, else ``None``."""
    if not parameters:
        return None
    rows = parameters if isinstance(parameters, list | tuple) else [parameters]
    keys: set[tuple[Any, ...]] = set()
    for row in rows:
        pairs = zip(target.pk_attributes, target.pk, strict=True)
        names = [attribute if attribute in row else column.key for attribute, column in pairs]
        if not all(name in row for name in names):
            return None
        keys.add(tuple(row[name] for name in names))
    return keys


def _matching_keys(
    connection: sa.Connection,
    target: _Target,
    whereclause: Any,
    parameters: dict[str, Any] | None,
) -> set[tuple[Any, ...]]:
    query = sa.select(*target.pk).select_from(target.table).order_by(*target.pk)
    if whereclause is not None:
        query = query.where(whereclause)
    if connection.dialect.name == "postgresql":
        query = query.with_for_update(of=target.table)
    return {tuple(row) for row in connection.execute(query, parameters)}


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
