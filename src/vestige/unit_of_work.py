"""A unit of work that writes versions and closes previous ones set-based.

With the ``validity`` strategy every new version closes the record's previous one
(sets its ``end_transaction_id``). Stock Continuum does that with one autoflushing
SELECT per changed row, which also breaks SQLAlchemy's batched INSERTs of the version
rows. :class:`SetBasedUnitOfWork` writes the versions of a flush without ORM objects
(``INSERT ... SELECT`` from the base table for inserted and updated records, one
executemany for deleted ones) and closes the previous versions with one UPDATE per
version table per flush (per parent table too in joined inheritance; a few more only
when a flush touches more records than the database accepts bind parameters in one
statement). :func:`install_fast_update_tracking` replaces Continuum's per-row insert
and update listeners with equivalents that know each class once.

On PostgreSQL the UPDATE locks the rows it closes in primary-key order first (an
ordered ``SELECT ... FOR UPDATE`` in its ``FROM``), so concurrent flushes over
overlapping records queue instead of deadlocking (Continuum went per-row after a
set-based UPDATE deadlocked on MySQL, its issue #172). Dialects other than PostgreSQL
and SQLite keep Continuum's per-row close.

It is the default of :func:`vestige.versioning.make_versioned`; to go back to stock::

    import sqlalchemy_continuum
    make_versioned(user_cls="User", unit_of_work_cls=sqlalchemy_continuum.UnitOfWork)
"""

from __future__ import annotations

import sqlite3
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from copy import copy
from itertools import chain
from operator import attrgetter
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.orm.attributes import get_history, instance_state
from sqlalchemy.orm.base import PASSIVE_NO_INITIALIZE
from sqlalchemy_continuum import UnitOfWork
from sqlalchemy_continuum._compat import get_primary_keys
from sqlalchemy_continuum.operation import Operation
from sqlalchemy_continuum.plugins.base import Plugin
from sqlalchemy_continuum.utils import (
    end_tx_column_name,
    is_modified,
    is_versioned,
    tx_column_name,
    version_class,
    versioned_column_properties,
)

__all__ = ["SET_BASED_DIALECTS", "SetBasedUnitOfWork", "install_fast_update_tracking"]

SET_BASED_DIALECTS = frozenset({"postgresql", "sqlite"})
"""Dialects on which the close is set-based; others keep Continuum's per-row close."""

# SQLite before 3.32 accepts at most 999 bind parameters per statement.
_SQLITE_MAX_PARAMS = 32766 if sqlite3.sqlite_version_info >= (3, 32) else 999
_MAX_PARAMS = 30000
# Plugin hooks that see (or look up, as ActivityPlugin does) version objects: a plugin
# implementing one of them gets Continuum's version objects instead of plain rows.
_OBJECT_HOOKS = ("after_create_version_object", "after_create_version_objects", "before_flush")


class CloseTarget:
    """One version table to close previous versions in, and the records to close."""

    __slots__ = ("end_column", "keys", "pk_attributes", "pk_columns", "table", "tx_column")

    def __init__(self, version_cls: type, tx: str, end_tx: str) -> None:
        table: sa.Table = version_cls.__table__  # type: ignore[attr-defined]
        primary_key = {
            key: column for key, column in get_primary_keys(version_cls).items() if key != tx
        }
        self.table = table
        self.pk_attributes = list(primary_key)
        self.pk_columns = [
            table.c[column.name] if column.name in table.c else table.c[key]
            for key, column in primary_key.items()
        ]
        self.tx_column = table.c[tx]
        self.end_column = table.c[end_tx]
        self.keys: set[tuple[Any, ...]] = set()

    @classmethod
    def like(cls, other: CloseTarget) -> CloseTarget:
        """An empty target for the same table."""
        target = cls.__new__(cls)
        target.table, target.pk_attributes = other.table, other.pk_attributes
        target.pk_columns, target.tx_column = other.pk_columns, other.tx_column
        target.end_column, target.keys = other.end_column, set()
        return target


class RowPlan:
    """How to write a version of one versioned class as a plain row (no ORM object)."""

    __slots__ = (
        "attributes",
        "close",
        "close_by_record_key",
        "columns",
        "copy_columns",
        "copy_from",
        "key_attributes",
        "key_of",
        "operation_column",
        "table",
        "tx_column",
    )

    def __init__(self, manager: Any, cls: type, version_cls: type) -> None:
        mapper: orm.Mapper[Any] = sa.inspect(version_cls)
        self.table = cast(sa.Table, mapper.local_table)
        properties = [prop.key for prop in versioned_column_properties(cls)]
        self.attributes = properties
        self.columns = [mapper.get_property(key).columns[0].key for key in properties]
        self.tx_column = self.table.c[manager.option(cls, "transaction_column_name")].key
        self.operation_column = self.table.c["operation_type"].key
        by_column = dict(zip(self.columns, self.attributes, strict=True))
        self.key_attributes = [
            by_column[c.key] for c in self.table.primary_key if c.key != self.tx_column
        ]
        # Inserted and updated rows can be copied by the database from the base table
        # (INSERT ... SELECT), sending keys instead of values; not with inheritance,
        # where the base table holds other classes' rows and columns too.
        parent: orm.Mapper[Any] = sa.inspect(cls)
        base = parent.local_table
        self.copy_from: sa.Table | None = None
        self.copy_columns: list[tuple[str, sa.ColumnElement[Any]]] = []
        base_columns = {c.name: c for c in base.c} if isinstance(base, sa.Table) else {}
        if (
            isinstance(base, sa.Table)
            and parent.inherits is None
            and parent.polymorphic_on is None
            and all(self.table.c[key].name in base_columns for key in self.columns)
        ):
            self.copy_from = base
            self.copy_columns = [
                (key, base_columns[self.table.c[key].name]) for key in self.columns
            ]
        self.close: CloseTarget | None = None
        if manager.option(cls, "strategy") == "validity":
            self.close = CloseTarget(
                version_cls,
                manager.option(cls, "transaction_column_name"),
                manager.option(cls, "end_transaction_column_name"),
            )
        self.key_of = key_getter(self.key_attributes)
        # The close target keys records as the version table does; mostly the same key.
        self.close_by_record_key = (
            self.close is not None and self.close.pk_attributes == self.key_attributes
        )

    @classmethod
    def for_class(cls, manager: Any, parent_cls: type) -> RowPlan | None:
        """The plan for ``parent_cls``, or ``None`` when its versions need ORM objects."""
        version_cls = version_class(parent_cls)
        mapper: orm.Mapper[Any] = sa.inspect(version_cls)
        if len(mapper.tables) != 1 or not isinstance(mapper.local_table, sa.Table):
            return None  # joined inheritance: one version spans several tables
        try:
            return cls(manager, parent_cls, version_cls)
        except (KeyError, sa.exc.InvalidRequestError):
            return None

    def row(self, target: Any, operation_type: int, tx_id: int) -> dict[str, Any]:
        """The version row of ``target`` as it is now."""
        row: dict[str, Any] = {self.tx_column: tx_id, self.operation_column: operation_type}
        for attribute, column in zip(self.attributes, self.columns, strict=True):
            try:
                row[column] = getattr(target, attribute)
            except orm.exc.ObjectDeletedError:
                row[column] = None
        return row

    def record_key(self, target: Any) -> tuple[Any, ...]:
        """The record's primary key, in the order of the version table's."""
        return self.key_of(target)

    def copy_statements(
        self, keys: Iterable[tuple[Any, ...]], operation_type: int, tx_id: int, dialect: str
    ) -> Iterator[sa.Insert]:
        """``INSERT INTO <version> SELECT ... FROM <table>`` for these records as they are."""
        assert self.copy_from is not None
        base = self.copy_from
        by_name = {c.name: c for c in base.c}
        pk = [by_name[self.table.c[key].name] for key in self._key_columns()]
        names = [name for name, _ in self.copy_columns]
        names += [self.tx_column, self.operation_column]
        values = [column for _, column in self.copy_columns]
        for chunk in key_chunks(keys, len(pk), dialect):
            rows = sa.select(*values, sa.literal(tx_id), sa.literal(operation_type)).where(
                match_keys(pk, chunk)
            )
            yield self.table.insert().from_select(names, rows)

    def _key_columns(self) -> list[str]:
        return [c.key for c in self.table.primary_key if c.key != self.tx_column]


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
        if any(is_versioned(obj) and is_modified(obj) for obj in session.dirty):
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
        for class_ in version_obj.__class__.__mro__:
            if class_ not in self.manager.parent_class_map:
                continue
            target = self._close_targets.get(class_.__table__)
            if target is None:
                target = CloseTarget(class_, tx_name, end_tx_name)
                self._close_targets[target.table] = target
            target.keys.add(tuple(getattr(version_obj, key) for key in target.pk_attributes))

    def create_version_objects(self, session: orm.Session) -> None:
        """Write this flush's versions in one batch per table, then close their predecessors."""
        options = self.manager.options
        if not options["versioning"] or options["native_versioning"]:
            return
        if self._dialect_name() not in SET_BASED_DIALECTS:
            super().create_version_objects(session)
            return
        rows: dict[sa.Table, list[dict[str, Any]]] = {}
        copies: dict[tuple[RowPlan, int], list[tuple[Any, ...]]] = {}
        refreshed: list[tuple[RowPlan, dict[str, Any], tuple[Any, ...]]] = []
        for _key, operation in copy(self.operations).items():
            if operation.processed:
                continue
            if not self.current_transaction:
                raise Exception("Current transaction not available.")
            plan = self._plan(operation.target.__class__)
            if plan is None:
                self.process_operation(operation)
                continue
            key = plan.record_key(operation.target)
            written = self._written.setdefault(plan.table, set())
            if key not in written and plan.copy_from is not None and operation.type != 2:
                copies.setdefault((plan, operation.type), []).append(key)
            else:
                row = plan.row(operation.target, operation.type, self.current_transaction.id)
                if key in written:
                    refreshed.append((plan, row, key))
                else:
                    rows.setdefault(plan.table, []).append(row)
            written.add(key)
            if plan.close is not None:
                close = self._close_target_for(plan)
                if plan.close_by_record_key:
                    close.keys.add(key)
                else:
                    close.keys.add(tuple(getattr(operation.target, a) for a in close.pk_attributes))
            operation.processed = True
        self.version_session.flush()
        connection = self.version_session.connection()
        dialect = connection.dialect.name
        for (plan, operation_type), keys in copies.items():
            tx_id = self.current_transaction.id
            for statement in plan.copy_statements(keys, operation_type, tx_id, dialect):
                connection.execute(statement)
        for table, batch in rows.items():
            # Single-table inheritance: subclasses version different columns of one table.
            by_columns: dict[frozenset[str], list[dict[str, Any]]] = {}
            for row in batch:
                by_columns.setdefault(frozenset(row), []).append(row)
            for same in by_columns.values():
                connection.execute(table.insert(), same)
        for plan, row, key in refreshed:
            self._refresh(connection, plan, row, key)
        self._close(connection)

    def _plans(self) -> dict[type, RowPlan | None]:
        plans: dict[type, RowPlan | None] | None = getattr(self.manager, "_vestige_plans", None)
        if plans is None:
            plans = {}
            self.manager._vestige_plans = plans
        return plans

    def _plan(self, cls: type) -> RowPlan | None:
        plans = self._plans()
        if cls not in plans:
            object_hooks = any(
                getattr(type(plugin), hook) is not getattr(Plugin, hook)
                for plugin in self.manager.plugins
                for hook in _OBJECT_HOOKS
            )
            plans[cls] = None if object_hooks else RowPlan.for_class(self.manager, cls)
        return plans[cls]

    def _close_target_for(self, plan: RowPlan) -> CloseTarget:
        assert plan.close is not None
        target = self._close_targets.get(plan.table)
        if target is None:
            target = CloseTarget.like(plan.close)
            self._close_targets[plan.table] = target
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

    def _close(self, connection: sa.Connection) -> None:
        if not self._close_targets:
            return
        tx_id = self.current_transaction.id
        targets, self._close_targets = self._close_targets, {}
        for target in sorted(targets.values(), key=lambda t: t.table.fullname):
            for statement in close_statements(target, tx_id, connection.dialect.name):
                connection.execute(statement)

    def _dialect_name(self) -> str:
        bind = self.version_session.get_bind()
        return str(bind.dialect.name)


def close_statements(target: CloseTarget, tx_id: int, dialect: str) -> Iterator[sa.Update]:
    """The UPDATEs closing the open versions of ``target.keys`` written before ``tx_id``.

    "Before" means committed before, not a smaller id: Continuum numbers a transaction
    at its first flush, so a concurrent writer with a larger id can commit a version of
    the same record first. This transaction holds the record's row lock when it gets
    here, so every other open version is closed by it and the record keeps exactly one
    open version (H1); stock closes only the largest smaller id and leaves two open.
    """
    for keys in key_chunks(target.keys, len(target.pk_columns), dialect):
        yield _close_statement(target, keys, tx_id, dialect)


def key_chunks(
    keys: Iterable[tuple[Any, ...]], width: int, dialect: str
) -> Iterator[list[tuple[Any, ...]]]:
    """Primary keys in sorted order, in chunks that fit one statement's bind parameters."""
    limit = _SQLITE_MAX_PARAMS if dialect == "sqlite" else _MAX_PARAMS
    size = max(1, (limit - 8) // max(width, 1))
    try:
        ordered = sorted(keys)
    except TypeError:  # a NULL key column next to values: NULLs last
        ordered = sorted(keys, key=_sort_key)
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


def match_keys(columns: Sequence[sa.ColumnElement[Any]], keys: Sequence[tuple[Any, ...]]) -> Any:
    """``(columns) IN (keys)``, as a plain IN for a one-column key."""
    if len(columns) == 1:
        return columns[0].in_([key[0] for key in keys])
    return sa.tuple_(*columns).in_(keys)


def _close_statement(
    target: CloseTarget, keys: Sequence[tuple[Any, ...]], tx_id: int, dialect: str
) -> sa.Update:
    table, pk = target.table, target.pk_columns
    open_before = sa.and_(
        target.end_column.is_(None), target.tx_column != tx_id, match_keys(pk, keys)
    )
    update = table.update().values({target.end_column.key: tx_id})
    if dialect != "postgresql":
        return update.where(open_before)
    # Lock in primary-key order, then update what was locked: concurrent flushes over
    # overlapping records take their locks in the same order and cannot deadlock here.
    locked = (
        sa.select(*pk, target.tx_column)
        .where(open_before)
        .order_by(*pk, target.tx_column)
        .with_for_update()
        .subquery("locked")
    )
    return update.where(
        *(column == locked.c[column.key] for column in pk),
        target.tx_column == locked.c[target.tx_column.key],
    )


def key_getter(attributes: Sequence[str]) -> Callable[[Any], tuple[Any, ...]]:
    """A function reading these attributes of an object as a tuple."""
    if len(attributes) == 1:
        (only,) = attributes
        return lambda target: (getattr(target, only),)
    return cast("Callable[[Any], tuple[Any, ...]]", attrgetter(*attributes))


def _sort_key(key: tuple[Any, ...]) -> tuple[tuple[bool, Any], ...]:
    return tuple((value is None, value) for value in key)


class _TrackedClass:
    """What the update tracker needs to know of a versioned class, computed once."""

    __slots__ = ("collections", "key_of", "versioned")

    def __init__(self, cls: type) -> None:
        mapper: orm.Mapper[Any] = sa.inspect(cls)
        columns = {prop.key for prop in versioned_column_properties(cls)}
        relationships = mapper.relationships
        self.versioned = frozenset(
            columns
            | {r.key for r in relationships if any(c.key in columns for c in r.local_columns)}
        )
        self.collections = frozenset(
            r.key for r in relationships if r.direction.name in ("ONETOMANY", "MANYTOMANY")
        )
        # The key Continuum's Operations use (sqlalchemy_continuum._compat.identity).
        self.key_of = key_getter(list(get_primary_keys(cls)))


class _SessionUnitsOfWork:
    """Which unit of work a session's flush writes to, looked up once per transaction.

    Continuum's listeners find it through ``session.connection()`` for every row. Within
    one session transaction that connection does not change, so the answer is kept
    while the transaction lasts and the manager still holds that unit of work.
    """

    def __init__(self, manager: Any) -> None:
        self.manager = manager
        self.known: weakref.WeakKeyDictionary[orm.Session, tuple[Any, Any, Any]] = (
            weakref.WeakKeyDictionary()
        )

    def __call__(self, target: Any) -> Any:
        # As Continuum's listeners do: through the session's connection, not the event's.
        session = orm.object_session(target)
        assert session is not None
        transaction = session.get_transaction()
        found = self.known.get(session)
        if found is not None:
            known_transaction, connection, uow = found
            if (
                known_transaction is transaction
                and self.manager.units_of_work.get(connection) is uow
            ):
                return uow
        connection = session.connection()
        uow = self.manager._uow_from_conn(connection)
        self.known[session] = (transaction, connection, uow)
        return uow


def install_fast_update_tracking(manager: Any) -> None:
    """Make ``manager`` note inserted and updated objects without per-row scans.

    Continuum's ``after_update`` listener rebuilds the list of versioned properties and
    inspects the history of every attribute of every updated row, and both listeners
    recompute the primary-key attributes of the class for every row. These know each
    class once and look only at the attributes SQLAlchemy recorded as changed
    (``committed_state``), with the same outcome. Installed on the instance, so they
    outlive ``manager.reset()``; call before ``make_versioned`` registers them.
    """
    classes: weakref.WeakKeyDictionary[type, _TrackedClass] = weakref.WeakKeyDictionary()
    unit_of_work = _SessionUnitsOfWork(manager)

    def tracked(target: Any) -> _TrackedClass:
        cls = type(target)
        found = classes.get(cls)
        if found is None:
            found = classes[cls] = _TrackedClass(cls)
        return found

    def track_inserts(mapper: orm.Mapper[Any], connection: sa.Connection, target: Any) -> None:
        if not is_versioned(target):
            return
        uow = unit_of_work(target)
        key = (type(target), tracked(target).key_of(target))
        # As Continuum's Operations.add_insert: deleted, then inserted again, is an update.
        kind = Operation.UPDATE if key in uow.operations.objects else Operation.INSERT
        uow.operations[key] = Operation(target, kind)

    def track_updates(mapper: orm.Mapper[Any], connection: sa.Connection, target: Any) -> None:
        if not is_versioned(target):
            return
        known = tracked(target)
        changed = list(instance_state(target).committed_state)
        versioned = known.versioned
        if not any(
            key in versioned and get_history(target, key, PASSIVE_NO_INITIALIZE).has_changes()
            for key in changed
        ):
            return
        # As Continuum's Operations.add_update: changed collections alone make no version.
        if all(key in known.collections for key in changed):
            return
        uow = unit_of_work(target)
        key = (type(target), known.key_of(target))
        uow.operations[key] = Operation(target, Operation.UPDATE)

    manager.track_inserts = track_inserts
    manager.track_updates = track_updates
    manager.mapper_listeners["after_insert"] = track_inserts
    manager.mapper_listeners["after_update"] = track_updates
