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
  other changes (see :mod:`vestige.versioning.bulk_versions`).

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
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy_continuum import VersioningManager, version_class

from vestige.config import BULK_WRITE_MODES, BulkWriteMode, Settings
from vestige.errors import ConfigError, UnversionedWriteError, UnversionedWriteWarning
from vestige.versioning.bulk_versions import version_statement

__all__ = [
    "BULK_WRITE_MODES",
    "SKIP_OPTION",
    "BulkWriteGuard",
    "BulkWriteMode",
    "bulk_write_mode",
    "install_bulk_write_guard",
    "remove_bulk_write_guard",
]

DEFAULT_MODE: BulkWriteMode = "warn"
SKIP_OPTION = "vestige_unversioned"

UNVERSIONED_MESSAGE = (
    "{operation} on versioned model {model} bypasses its history: Continuum writes no "
    "{version_table} rows for bulk statements ({statement}); change the objects through "
    'the session, or set [tool.vestige] bulk_writes = "version" (see docs/versioning.md, '
    "Bulk statements)"
)
BAD_MODE_MESSAGE = "[tool.vestige] bulk_writes must be one of {modes}, not {value!r}"


def bulk_write_mode(settings: Settings | None = None, value: Any = None) -> BulkWriteMode:
    """The bulk-write mode: ``value`` if given, else ``settings.bulk_writes``, else ``"warn"``.

    Nothing is read from ``pyproject.toml`` here: an application that keeps the mode in
    ``[tool.vestige] bulk_writes`` loads its settings and passes them (or the mode).

    Raises:
        ConfigError: The mode is not one of ``warn``, ``raise``, ``version``.
    """
    if value is None:
        value = settings.bulk_writes if settings is not None else DEFAULT_MODE
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
            return version_statement(state, self.manager, mapper, operation)
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
        mode: ``warn``, ``raise`` or ``version``; by default ``settings.bulk_writes``,
            else ``warn``.
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
