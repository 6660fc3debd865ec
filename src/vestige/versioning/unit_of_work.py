"""A unit of work that writes versions and closes previous ones set-based.

With the ``validity`` strategy every new version closes the record's previous one
(sets its ``end_transaction_id``). Stock Continuum does that with one autoflushing
SELECT per changed row, which also breaks SQLAlchemy's batched INSERTs of the version
rows. :class:`SetBasedUnitOfWork` writes the versions of a flush without ORM objects
(``INSERT ... SELECT`` from the base table for inserted and updated records, one
executemany for deleted ones) and closes the previous versions with one UPDATE per
version table per flush (per parent table too in joined inheritance; a few more only
when a flush touches more records than the database accepts bind parameters in one
statement). The keys go as one parameter
(:func:`~vestige.versioning.keys.match_keys`), so those statements are compiled once
whatever the size of the flush.
:func:`~vestige.versioning.recording.install_flush_tracking` replaces Continuum's
per-row insert, update and delete listeners with one pass over each flush.

On PostgreSQL the UPDATE locks the rows it closes in primary-key order first (an
ordered ``SELECT ... FOR UPDATE`` in its ``FROM``), so concurrent flushes over
overlapping records queue instead of deadlocking (Continuum went per-row after a
set-based UPDATE deadlocked on MySQL, its issue #172). Dialects other than PostgreSQL
and SQLite keep Continuum's per-row close.

The parts, one concern each: :mod:`~vestige.versioning.keys` (matching sets of keys),
:mod:`~vestige.versioning.row_plans` (writing and closing versions as rows),
:mod:`~vestige.versioning.recording` (flush recording) and, here, the unit of work.

It is the default of :func:`vestige.versioning.make_versioned`; to go back to stock::

    import sqlalchemy_continuum
    make_versioned(user_cls="User", unit_of_work_cls=sqlalchemy_continuum.UnitOfWork)
"""

from __future__ import annotations

from itertools import chain
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy_continuum import UnitOfWork
from sqlalchemy_continuum.operation import Operation
from sqlalchemy_continuum.plugins.base import Plugin
from sqlalchemy_continuum.utils import (
    end_tx_column_name,
    is_modified,
    is_versioned,
    tx_column_name,
)

from vestige.versioning.recording import FlushOperations, _Batch
from vestige.versioning.row_plans import CloseTarget, RowPlan, close_statements, manager_cache

__all__ = ["SET_BASED_DIALECTS", "SetBasedUnitOfWork"]


SET_BASED_DIALECTS = frozenset({"postgresql", "sqlite"})
"""Dialects on which the close is set-based; others keep Continuum's per-row close."""
# Plugin hooks that see (or look up, as ActivityPlugin does) version objects: a plugin
# implementing one of them gets Continuum's version objects instead of plain rows.
_OBJECT_HOOKS = ("after_create_version_object", "after_create_version_objects", "before_flush")


class SetBasedUnitOfWork(UnitOfWork):  # type: ignore[misc]
    """Continuum's unit of work, writing versions as rows and closing them set-based.

    Transactions, plugins and association tables stay Continuum's. The versions of a
    flush are written without ORM version objects (``INSERT ... SELECT`` from the base
    table, or one executemany per version table), unless a plugin may need those
    objects (it implements ``after_create_version_object``, as ``PropertyModTrackerPlugin``
    does, or ``before_flush``, as ``ActivityPlugin`` does) or the class uses joined
    inheritance: those keep Continuum's version objects. Within one database transaction
    a record flushed several times keeps one version, refreshed, and its previous version
    is closed once: never with ``end_transaction_id == transaction_id``.
    """

    def reset(self, session: orm.Session | None = None) -> None:
        super().reset(session)
        self.operations = FlushOperations()
        self._close_targets: dict[sa.Table, CloseTarget] = {}
        self._written: dict[sa.Table, set[tuple[Any, ...]]] = {}

    def is_modified(self, session: orm.Session) -> bool:
        """Whether the session holds a versioned change, as Continuum decides it.

        Continuum scans every object of the session (its identity map too) and rebuilds
        each one's versioned property lists; an unchanged object has no attribute
        history, so only new, deleted and dirty objects are looked at here.
        """
        if any(is_versioned(obj) for obj in chain(session.new, session.deleted)):
            return True
        # Session.dirty builds a set of every modified object; one versioned one will do.
        states = getattr(session, "_dirty_states", None)
        dirty = session.dirty if states is None else (state.obj() for state in states)
        if any(obj is not None and is_versioned(obj) and is_modified(obj) for obj in dirty):
            return True
        return any(self.manager.plugins.is_session_modified(session))

    def update_version_validity(self, parent: Any, version_obj: Any) -> None:
        """Note the record whose previous version this flush must close.

        Called by Continuum for every new version object under the ``validity``
        strategy; the close itself runs once per flush in :meth:`create_version_objects`.
        """
        if self._dialect_name() not in SET_BASED_DIALECTS:
            super().update_version_validity(parent, version_obj)
            return
        tx_name, end_tx_name = tx_column_name(version_obj), end_tx_column_name(version_obj)
        templates: dict[type, CloseTarget] = manager_cache(self.manager, "_vestige_close_targets")
        for class_ in version_obj.__class__.__mro__:
            if class_ not in self.manager.parent_class_map:
                continue
            template = templates.get(class_)
            if template is None:
                template = templates[class_] = CloseTarget(class_, tx_name, end_tx_name)
            target = self._close_target_for(template)
            target.keys.add(tuple(getattr(version_obj, key) for key in target.pk_attributes))

    def create_version_objects(self, session: orm.Session) -> None:
        """Write this flush's versions in one batch per table, then close their predecessors."""
        options = self.manager.options
        if not options["versioning"] or options["native_versioning"]:
            return
        if self._dialect_name() not in SET_BASED_DIALECTS:
            super().create_version_objects(session)
            return
        batches = self._batches()
        if batches and not self.current_transaction:
            raise Exception("Current transaction not available.")
        rows: dict[sa.Table, list[dict[str, Any]]] = {}
        copies: dict[tuple[RowPlan, int], list[tuple[Any, ...]]] = {}
        refreshed: list[tuple[RowPlan, dict[str, Any], tuple[Any, ...]]] = []
        for batch in batches:
            cls, operation_type, identities, targets = batch
            plan = self._plan(cls)
            if plan is None:
                for operation in self.operations.operations_of(batch):
                    self.process_operation(operation)
                continue
            self.operations.written(batch)
            # Records are identified by primary key: mostly the version table's key.
            keys = identities if plan.key_is_identity else list(map(plan.key_of, targets))
            written = self._written.setdefault(plan.table, set())
            # A record written earlier in this transaction keeps its one version, refreshed.
            again = written.intersection(keys)
            copied = plan.copy is not None and operation_type != Operation.DELETE
            if copied:
                fresh = [key for key in keys if key not in again] if again else keys
                copies.setdefault((plan, operation_type), []).extend(fresh)
            if again or not copied:
                tx_id = self.current_transaction.id
                for target, key in zip(targets, keys, strict=True):
                    if key in again:
                        row = plan.row(target, operation_type, tx_id)
                        refreshed.append((plan, row, key))
                    elif not copied:
                        row = plan.row(target, operation_type, tx_id)
                        rows.setdefault(plan.table, []).append(row)
            written.update(keys)
            if plan.close is not None:
                close_keys = self._close_target_for(plan.close).keys
                if plan.close_by_record_key:
                    close_keys.update(keys)
                else:
                    pk = plan.close.pk_attributes
                    close_keys.update(tuple(getattr(t, a) for a in pk) for t in targets)
        self.version_session.flush()
        connection = self.version_session.connection()
        dialect = connection.dialect.name
        encoded: list[tuple[list[Any], str]] = []
        for (plan, operation_type), keys in copies.items():
            tx_id = self.current_transaction.id
            assert plan.copy is not None
            for statement, params in plan.copy.copy_statements(
                keys, operation_type, tx_id, dialect, encoded
            ):
                connection.execute(statement, params)
        for table, table_rows in rows.items():
            # Single-table inheritance: subclasses version different columns of one table.
            by_columns: dict[frozenset[str], list[dict[str, Any]]] = {}
            for row in table_rows:
                by_columns.setdefault(frozenset(row), []).append(row)
            for same in by_columns.values():
                connection.execute(table.insert(), same)
        for plan, row, key in refreshed:
            self._refresh(connection, plan, row, key)
        self._close(connection, encoded)

    def _batches(self) -> list[_Batch]:
        """The writes whose versions are not written yet, by class and kind.

        Mostly the batches flush tracking recorded; ``Operation`` objects not processed
        yet (made when something read ``operations.objects``, or added by a plugin)
        are grouped into batches too, unless a newer batch has their record.
        """
        operations = self.operations
        batches = operations.take_pending()
        groups: dict[tuple[type, int], tuple[list[tuple[Any, ...]], list[Any]]] = {}
        newer: set[tuple[type, tuple[Any, ...]]] | None = None
        for cls, identity, operation in operations.unwritten():
            if newer is None:
                newer = {(c, i) for c, _, ids, _ in batches for i in ids}
            operation.processed = True
            if (cls, identity) not in newer:
                identities, targets = groups.setdefault((cls, operation.type), ([], []))
                identities.append(identity)
                targets.append(operation.target)
        return [(cls, kind, *group) for (cls, kind), group in groups.items()] + batches

    def _plan(self, cls: type) -> RowPlan | None:
        plans: dict[type, RowPlan | None] = manager_cache(self.manager, "_vestige_plans")
        if cls not in plans:
            object_hooks = any(
                getattr(type(plugin), hook) is not getattr(Plugin, hook)
                for plugin in self.manager.plugins
                for hook in _OBJECT_HOOKS
            )
            plans[cls] = None if object_hooks else RowPlan.for_class(self.manager, cls)
        return plans[cls]

    def _close_target_for(self, template: CloseTarget) -> CloseTarget:
        """This flush's close of ``template``'s table; it shares the template's statements."""
        target = self._close_targets.get(template.table)
        if target is None:
            target = self._close_targets[template.table] = CloseTarget.like(template)
        return target

    def _refresh(
        self, connection: sa.Connection, plan: RowPlan, row: dict[str, Any], key: tuple[Any, ...]
    ) -> None:
        """Update this transaction's version of a record flushed again; insert it if gone.

        Gone means a rolled-back savepoint took it: stock Continuum raises
        ``StaleDataError`` there, Vestige writes the version again.
        """
        table = plan.table
        pk = [c for c in table.primary_key if c.key != plan.tx_column]
        where = [c == value for c, value in zip(pk, key, strict=True)]
        where.append(table.c[plan.tx_column] == row[plan.tx_column])
        if connection.execute(table.update().where(*where).values(row)).rowcount == 0:
            connection.execute(table.insert(), [row])

    def _close(
        self, connection: sa.Connection, encoded: list[tuple[list[Any], str]] | None = None
    ) -> None:
        if not self._close_targets:
            return
        tx_id = self.current_transaction.id
        dialect = connection.dialect.name
        targets, self._close_targets = self._close_targets, {}
        for target in sorted(targets.values(), key=lambda t: t.table.fullname):
            for statement, params in close_statements(target, tx_id, dialect, encoded):
                connection.execute(statement, params)

    def _dialect_name(self) -> str:
        bind = self.version_session.get_bind()
        return str(bind.dialect.name)
