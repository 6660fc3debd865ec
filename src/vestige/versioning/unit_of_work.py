"""A unit of work that writes versions and closes previous ones set-based.

With the ``validity`` strategy every new version closes the record's previous one
(sets its ``end_transaction_id``). Stock Continuum does that with one autoflushing
SELECT per changed row, which also breaks SQLAlchemy's batched INSERTs of the version
rows. :class:`SetBasedUnitOfWork` writes the versions of a flush without ORM objects
(``INSERT ... SELECT`` from the base table for inserted and updated records, one
executemany for deleted ones) and closes the previous versions with one UPDATE per
version table per flush (per parent table too in joined inheritance; a few more only
when a flush touches more records than the database accepts bind parameters in one
statement). The keys go as one parameter (:func:`match_keys`), so those statements are
compiled once whatever the size of the flush. :func:`install_flush_tracking` replaces
Continuum's per-row insert, update and delete listeners with one pass over each flush.

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

import contextlib
import json
import operator
import sqlite3
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain
from operator import attrgetter
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm.base import NEVER_SET, NO_VALUE, PASSIVE_NO_INITIALIZE, PASSIVE_NO_RESULT
from sqlalchemy_continuum import UnitOfWork
from sqlalchemy_continuum._compat import get_primary_keys
from sqlalchemy_continuum.operation import Operation, Operations
from sqlalchemy_continuum.plugins.base import Plugin
from sqlalchemy_continuum.utils import (
    end_tx_column_name,
    is_modified,
    is_versioned,
    tx_column_name,
    version_class,
    versioned_column_properties,
)

__all__ = [
    "SET_BASED_DIALECTS",
    "KeyMatch",
    "SetBasedUnitOfWork",
    "install_flush_tracking",
    "match_keys",
]

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

    __slots__ = (
        "_statements",
        "end_column",
        "keys",
        "pk_attributes",
        "pk_columns",
        "table",
        "tx_column",
    )

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
        self._statements: dict[str, tuple[sa.Update, KeyMatch]] = {}

    @classmethod
    def like(cls, other: CloseTarget) -> CloseTarget:
        """An empty target for the same table."""
        target = cls.__new__(cls)
        target.table, target.pk_attributes = other.table, other.pk_attributes
        target.pk_columns, target.tx_column = other.pk_columns, other.tx_column
        target.end_column, target.keys = other.end_column, set()
        target._statements = other._statements
        return target

    def statement(self, dialect: str) -> tuple[sa.Update, KeyMatch]:
        """The close's UPDATE on ``dialect``, built once, and how it takes its keys."""
        found = self._statements.get(dialect)
        if found is None:
            found = self._statements[dialect] = _close_statement(self, dialect)
        return found


class RowPlan:
    """How to write a version of one versioned class as a plain row (no ORM object)."""

    __slots__ = (
        "_copies",
        "attributes",
        "close",
        "close_by_record_key",
        "columns",
        "copy_columns",
        "copy_from",
        "key_attributes",
        "key_is_identity",
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
        self.key_is_identity = list(get_primary_keys(cls)) == self.key_attributes
        # The close target keys records as the version table does; mostly the same key.
        self.close_by_record_key = (
            self.close is not None and self.close.pk_attributes == self.key_attributes
        )
        self._copies: dict[str, tuple[sa.Insert, KeyMatch]] = {}

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

    def copy_statements(
        self,
        keys: Iterable[tuple[Any, ...]],
        operation_type: int,
        tx_id: int,
        dialect: str,
        encoded: list[tuple[list[Any], str]] | None = None,
    ) -> Iterator[tuple[sa.Insert, dict[str, Any]]]:
        """``INSERT INTO <version> SELECT ... FROM <table>`` for these records as they are.

        Pairs of a statement, built once per dialect, and its parameters (``encoded``:
        see :meth:`KeyMatch.params`).
        """
        statement, match = self._copies.get(dialect) or self._copy_statement(dialect)
        for batch in key_batches(keys, match, dialect):
            params = match.params(batch, encoded)
            params["vestige_tx"], params["vestige_operation"] = tx_id, operation_type
            yield statement, params

    def _copy_statement(self, dialect: str) -> tuple[sa.Insert, KeyMatch]:
        assert self.copy_from is not None
        by_name = {c.name: c for c in self.copy_from.c}
        match = KeyMatch([by_name[self.table.c[key].name] for key in self._key_columns()], dialect)
        names = [name for name, _ in self.copy_columns]
        names += [self.tx_column, self.operation_column]
        rows = sa.select(
            *(column for _, column in self.copy_columns),
            sa.bindparam("vestige_tx", type_=self.table.c[self.tx_column].type),
            sa.bindparam("vestige_operation", type_=self.table.c[self.operation_column].type),
        )
        if match.keys_table is not None and match.on is not None:
            # The keys are distinct (one operation per record): the join copies each once.
            rows = rows.select_from(match.keys_table.join(self.copy_from, match.on))
        else:
            rows = rows.where(match.clause)
        self._copies[dialect] = self.table.insert().from_select(names, rows), match
        return self._copies[dialect]

    def _key_columns(self) -> list[str]:
        return [c.key for c in self.table.primary_key if c.key != self.tx_column]


# One flush's writes of one class and kind: the records' identities and their objects.
_Batch = tuple[type, int, list[tuple[Any, ...]], list[Any]]


def _operations_into(
    objects: dict[tuple[type, tuple[Any, ...]], Operation], batch: _Batch, processed: bool
) -> list[Operation]:
    """Continuum's ``Operation`` objects for a batch, stored in ``objects`` too."""
    cls, kind, identities, targets = batch
    made = []
    for identity, target in zip(identities, targets, strict=True):
        operation = objects[cls, identity] = Operation(target, kind)
        operation.processed = processed
        made.append(operation)
    return made


class FlushOperations(Operations):  # type: ignore[misc]
    """Continuum's ``uow.operations``, with each flush's writes recorded in batches.

    Continuum keeps one :class:`~sqlalchemy_continuum.operation.Operation` object per
    written record, keyed by class and identity. Flush tracking records a flush as
    batches instead (one per class and kind: identities and objects, in lists) and
    the unit of work writes their versions from those; the ``Operation`` objects are
    made only when something reads :attr:`objects` (a plugin, Continuum's own unit of
    work), the same ones Continuum would have: the last write of each record, in
    order, ``processed`` once its version is written.
    """

    def __init__(self) -> None:
        self._objects: dict[tuple[type, tuple[Any, ...]], Operation] = {}
        self.pending: list[_Batch] = []  # recorded, versions not written yet
        self._written: list[_Batch] = []  # versions written
        self.identities: dict[type, set[tuple[Any, ...]]] = {}  # every record, by class

    @property
    def objects(self) -> dict[tuple[type, tuple[Any, ...]], Operation]:
        if self._written or self.pending:
            self.materialize()
        return self._objects

    @objects.setter
    def objects(self, value: dict[tuple[type, tuple[Any, ...]], Operation]) -> None:
        self.materialize()
        self._objects = value

    def materialize(self) -> None:
        """Turn the batches into ``Operation`` objects in :attr:`objects`."""
        batches = [(batch, True) for batch in self._written] + [(b, False) for b in self.pending]
        self._written, self.pending = [], []
        for batch, processed in batches:
            _operations_into(self._objects, batch, processed)

    def take_pending(self) -> list[_Batch]:
        """The batches recorded since the last call, to write the versions of."""
        pending, self.pending = self.pending, []
        return pending

    def written(self, batch: _Batch) -> None:
        """Count a batch taken from :meth:`take_pending` as processed."""
        self._written.append(batch)

    def unwritten(self) -> Iterator[tuple[type, tuple[Any, ...], Operation]]:
        """``Operation`` objects not processed yet (not the batches'): class, identity, it."""
        for (cls, identity), operation in self._objects.items():
            if not operation.processed:
                yield cls, identity, operation

    def operations_of(self, batch: _Batch) -> list[Operation]:
        """``Operation`` objects for a batch taken from :meth:`take_pending`."""
        return _operations_into(self._objects, batch, processed=False)

    def __bool__(self) -> bool:
        return bool(self._objects or self.pending or self._written)

    def __copy__(self) -> Operations:
        copied = Operations()
        copied.objects = self.objects  # Continuum's copies share the dict too
        return copied

    @property
    def entities(self) -> set[type]:
        batches = chain(self._written, self.pending)
        return {cls for cls, _ in self._objects} | {batch[0] for batch in batches}


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
        templates: dict[type, CloseTarget] = self._manager_cache("_vestige_close_targets")
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
            copied = plan.copy_from is not None and operation_type != Operation.DELETE
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
            for statement, params in plan.copy_statements(
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

    def _manager_cache(self, name: str) -> dict[Any, Any]:
        """A dict kept on the manager: what is computed once per class, for every flush."""
        cache: dict[Any, Any] | None = getattr(self.manager, name, None)
        if cache is None:
            cache = {}
            setattr(self.manager, name, cache)
        return cache

    def _plan(self, cls: type) -> RowPlan | None:
        plans: dict[type, RowPlan | None] = self._manager_cache("_vestige_plans")
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


def close_statements(
    target: CloseTarget,
    tx_id: int,
    dialect: str,
    encoded: list[tuple[list[Any], str]] | None = None,
) -> Iterator[tuple[sa.Update, dict[str, Any]]]:
    """The UPDATEs closing the open versions of ``target.keys`` written before ``tx_id``.

    Pairs of a statement, built once per target and dialect, and its parameters
    (``encoded``: see :meth:`KeyMatch.params`). "Before" means committed before, not a
    smaller id: Continuum numbers a transaction at its first flush, so a concurrent
    writer with a larger id can commit a version of the same record first. This
    transaction holds the record's row lock when it gets here, so every other open
    version is closed by it and the record keeps exactly one open version (H1); stock
    closes only the largest smaller id and leaves two open.
    """
    statement, match = target.statement(dialect)
    for batch in key_batches(target.keys, match, dialect):
        params = match.params(batch, encoded)
        params["vestige_tx"] = tx_id
        yield statement, params


def key_batches(
    keys: Iterable[tuple[Any, ...]], match: KeyMatch, dialect: str
) -> Iterator[Sequence[tuple[Any, ...]]]:
    """The keys in as few batches as ``match`` takes: one, or chunks of an ``IN`` list."""
    if not match.one_parameter:
        yield from key_chunks(keys, len(match.columns), dialect)
        return
    batch = keys if isinstance(keys, Sequence) else list(keys)
    if batch:
        yield batch


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


class KeyMatch:
    """``(columns) IN (keys)`` as one clause to build once and execute with any keys.

    On PostgreSQL the keys go as an array per column (``= ANY(%(keys)s::INTEGER[])``),
    on SQLite as one JSON text read by ``json_each``: the statement stays the same
    whatever the number of keys, so it is compiled once and cached, instead of
    expanding one bind parameter per key. Other dialects, and key columns whose values
    are not plain integers, strings or UUIDs, get an expanding ``IN`` list
    (:attr:`one_parameter` is false: callers chunk the keys with :func:`key_chunks`).

    The keys are bound at execution by :meth:`params`, under names starting with
    ``name``, unless ``keys`` are given here: then they are bound into the clause.

    On SQLite, :attr:`keys_table` and :attr:`on` offer the same match as a join:
    ``json_each`` drives the statement and each key is looked up in the table's index,
    where ``IN`` first copies the keys into a temporary b-tree.
    """

    __slots__ = (
        "_json",
        "_processors",
        "clause",
        "columns",
        "keys_table",
        "name",
        "on",
        "one_parameter",
    )

    def __init__(
        self,
        columns: Sequence[sa.ColumnElement[Any]],
        dialect: str,
        name: str = "vestige_keys",
        keys: Sequence[tuple[Any, ...]] | None = None,
    ) -> None:
        self.columns, self.name = list(columns), name
        self.clause: sa.ColumnElement[bool]
        self.keys_table: sa.FromClause | None = None
        self.on: sa.ColumnElement[bool] | None = None
        self.one_parameter = dialect in _ONE_PARAMETER_DIALECTS and all(
            _plain_key_type(column) for column in columns
        )
        self._json = self.one_parameter and dialect == "sqlite"
        self._processors: list[Any] = []
        if self._json:
            # Values as the column's type stores them (a UUID as its hex text, for instance).
            self._processors = [
                column.type.dialect_impl(_SQLITE_DIALECT).bind_processor(_SQLITE_DIALECT)
                for column in columns
            ]
        values = self.params(keys) if keys is not None else {}

        def bind(key: str, type_: Any = None, expanding: bool = False) -> Any:
            if keys is None:
                return sa.bindparam(key, type_=type_, expanding=expanding)
            return sa.bindparam(key, values[key], type_=type_, expanding=expanding, unique=True)

        if not self.one_parameter:
            if len(columns) == 1:
                self.clause = columns[0].in_(bind(name, columns[0].type, expanding=True))
            else:
                self.clause = sa.tuple_(*columns).in_(bind(name, expanding=True))
        elif dialect == "postgresql":
            # Rendered as %(param)s::INTEGER[] and so on: typed, whatever the element type.
            arrays = [
                bind(f"{name}_{i}", postgresql.ARRAY(column.type))
                for i, column in enumerate(columns)
            ]
            if len(columns) == 1:
                self.clause = columns[0] == sa.func.any(arrays[0])
            else:
                # Set-returning functions in one select list run in lockstep: one row per key.
                unnested = sa.select(*(sa.func.unnest(array) for array in arrays))
                self.clause = sa.tuple_(*columns).in_(unnested)
        else:
            each = sa.func.json_each(bind(name, sa.Text)).table_valued("value")
            if len(columns) == 1:
                picked: list[sa.ColumnElement[Any]] = [each.c.value]
                self.clause = columns[0].in_(sa.select(each.c.value))
            else:
                picked = [
                    sa.func.json_extract(each.c.value, f"$[{i}]") for i in range(len(columns))
                ]
                self.clause = sa.tuple_(*columns).in_(sa.select(*picked))
            self.keys_table = each
            self.on = sa.and_(*(c == v for c, v in zip(columns, picked, strict=True)))

    def params(
        self, keys: Sequence[tuple[Any, ...]], encoded: list[tuple[list[Any], str]] | None = None
    ) -> dict[str, Any]:
        """The execution parameters that bind ``keys`` to :attr:`clause`.

        ``encoded`` keeps the JSON texts made so far (SQLite): a flush copies and closes
        the same keys, and encodes them once.
        """
        if not self.one_parameter:
            if len(self.columns) == 1:
                return {self.name: [key[0] for key in keys]}
            return {self.name: list(keys)}
        if not self._json:
            return {f"{self.name}_{i}": [key[i] for key in keys] for i in range(len(self.columns))}
        if any(self._processors):
            keys = [
                tuple(
                    value if process is None else process(value)
                    for value, process in zip(key, self._processors, strict=True)
                )
                for key in keys
            ]
        # In index order: SQLite then reads each key's rows next to the previous key's
        # (joined through keys_table, it visits them in the order given).
        values: list[Any] = [key[0] for key in keys] if len(self.columns) == 1 else list(keys)
        with contextlib.suppress(TypeError):  # a NULL among values: any order will do
            values.sort()
        if encoded is None:
            return {self.name: json.dumps(values)}
        text = next((text for seen, text in encoded if seen == values), None)
        if text is None:
            text = json.dumps(values)
            encoded.append((values, text))
        return {self.name: text}


def match_keys(
    columns: Sequence[sa.ColumnElement[Any]], keys: Sequence[tuple[Any, ...]], dialect: str
) -> Any:
    """``(columns) IN (keys)`` with these keys bound in; see :class:`KeyMatch`."""
    return KeyMatch(columns, dialect, keys=keys).clause


# json_each is built into SQLite from 3.38 (before, only when compiled with JSON1).
_ONE_PARAMETER_DIALECTS = frozenset(
    {"postgresql", "sqlite"} if sqlite3.sqlite_version_info >= (3, 38) else {"postgresql"}
)
_PLAIN_KEY_TYPES = (int, str, uuid.UUID)


def _plain_key_type(column: sa.ColumnElement[Any]) -> bool:
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        return False
    return isinstance(python_type, type) and issubclass(python_type, _PLAIN_KEY_TYPES)


_SQLITE_DIALECT = sqlite.dialect()


def _close_statement(target: CloseTarget, dialect: str) -> tuple[sa.Update, KeyMatch]:
    table, pk = target.table, target.pk_columns
    tx_id = sa.bindparam("vestige_tx", type_=target.tx_column.type)
    match = KeyMatch(pk, dialect)
    # On SQLite, "+ 0" keeps the planner off the end-transaction index: without ANALYZE
    # statistics it would walk every open version instead of the few keys asked for.
    end = target.end_column + 0 if dialect == "sqlite" else target.end_column
    update = table.update().values({target.end_column.key: tx_id})
    if match.on is not None:  # UPDATE ... FROM json_each(...): see KeyMatch
        return update.where(end.is_(None), target.tx_column != tx_id, match.on), match
    open_before = sa.and_(end.is_(None), target.tx_column != tx_id, match.clause)
    if dialect != "postgresql":
        return update.where(open_before), match
    # Lock in primary-key order, then update what was locked: concurrent flushes over
    # overlapping records take their locks in the same order and cannot deadlock here.
    locked = (
        sa.select(*pk, target.tx_column)
        .where(open_before)
        .order_by(*pk, target.tx_column)
        .with_for_update()
        .subquery("locked")
    )
    update = update.where(
        *(column == locked.c[column.key] for column in pk),
        target.tx_column == locked.c[target.tx_column.key],
    )
    return update, match


def key_getter(attributes: Sequence[str]) -> Callable[[Any], tuple[Any, ...]]:
    """A function reading these attributes of an object as a tuple."""
    if len(attributes) == 1:
        (only,) = attributes
        return lambda target: (getattr(target, only),)
    return cast("Callable[[Any], tuple[Any, ...]]", attrgetter(*attributes))


def _key_reader(
    attributes: Sequence[str], key_of: Callable[[Any], tuple[Any, ...]]
) -> Callable[[Any, dict[str, Any]], tuple[Any, ...]]:
    """``key(target, values)``: the attributes as a tuple, read from ``values`` (the
    object's ``__dict__``) when it holds them all, else through ``key_of``."""
    if len(attributes) == 1:
        (only,) = attributes

        def key(target: Any, values: dict[str, Any]) -> tuple[Any, ...]:
            try:
                return (values[only],)
            except KeyError:  # expired: loaded through the attribute
                return key_of(target)

        return key

    def keys(target: Any, values: dict[str, Any]) -> tuple[Any, ...]:
        try:
            return tuple(map(values.__getitem__, attributes))
        except KeyError:
            return key_of(target)

    return keys


def _sort_key(key: tuple[Any, ...]) -> tuple[tuple[bool, Any], ...]:
    return tuple((value is None, value) for value in key)


class _TrackedClass:
    """What flush tracking needs to know of a versioned class, computed once."""

    __slots__ = ("collections", "history_of", "key", "key_of", "plain", "scalar_equal")

    def __init__(self, cls: type) -> None:
        mapper: orm.Mapper[Any] = sa.inspect(cls)
        columns = {prop.key for prop in versioned_column_properties(cls)}
        relationships = mapper.relationships
        versioned = columns | {
            r.key for r in relationships if any(c.key in columns for c in r.local_columns)
        }
        # What get_history(obj, key) calls, found once: attribute key -> its history.
        attributes: Any = orm.attributes.manager_of_class(cls)
        impls = {key: attributes[key].impl for key in versioned}
        self.history_of = {key: impl.get_history for key, impl in impls.items()}
        # Plain column attributes: their history is "the value differs from the committed
        # one" (History.from_scalar_attribute), checked here without building a History.
        self.scalar_equal = {
            key: impl.is_equal for key, impl in impls.items() if type(impl) is _SCALAR_IMPL
        }
        # Those whose type compares values with == (TypeEngine.compare_values): compared
        # inline, without a call.
        self.plain = frozenset(
            key
            for key, equal in self.scalar_equal.items()
            if getattr(equal, "__func__", None) is sa.types.TypeEngine.compare_values
            or equal is operator.eq
        )
        self.collections = frozenset(
            r.key for r in relationships if r.direction.name in ("ONETOMANY", "MANYTOMANY")
        )
        # The key Continuum's Operations use (sqlalchemy_continuum._compat.identity).
        attributes = list(get_primary_keys(cls))
        self.key_of = key_getter(attributes)
        self.key = _key_reader(attributes, self.key_of)

    def changed(self, state: orm.InstanceState[Any], values: dict[str, Any]) -> bool:
        """Whether an updated object makes a new version, as Continuum's listener decides.

        A versioned attribute must have changed, and changed collections alone make no
        version (``Operations.add_update``). ``values`` is the object's ``__dict__``.
        """
        committed, plain = state.committed_state, self.plain
        for key, original in committed.items():
            if key in plain and key in values and id(original) not in _NO_STATE:
                if (values[key] == original) is True:
                    continue
            elif (equal := self.scalar_equal.get(key)) is not None and (
                key in values and id(original) not in _NO_STATE
            ):
                if equal(values[key], original) is True:
                    continue
            else:
                history = self.history_of.get(key)
                if (
                    history is None
                    or not history(state, values, PASSIVE_NO_INITIALIZE).has_changes()
                ):
                    continue
            return not self.collections or not committed.keys() <= self.collections
        return False


# SQLAlchemy's markers for "no committed value known" (NO_VALUE, NEVER_SET, ...).
_NO_STATE = frozenset(id(symbol) for symbol in (NO_VALUE, NEVER_SET, PASSIVE_NO_RESULT))
# The implementation of plain column attributes (renamed with a leading _ in 2.1).
_SCALAR_IMPL = getattr(
    orm.attributes, "_ScalarAttributeImpl", getattr(orm.attributes, "ScalarAttributeImpl", None)
)


_UNSEEN: Any = object()
_instance_dict = orm.attributes.instance_dict


class _Recording:
    """One versioned class's writes in the flush being recorded."""

    __slots__ = ("changed", "identities", "key", "seen", "targets")

    def __init__(self, tracked: _TrackedClass, seen: set[tuple[Any, ...]]) -> None:
        self.changed, self.key, self.seen = tracked.changed, tracked.key, seen
        # By kind (Operation.INSERT, UPDATE, DELETE): identities, and objects.
        self.identities: list[list[tuple[Any, ...]]] = [[], [], []]
        self.targets: list[list[Any]] = [[], [], []]

    def add(self, kind: int, identity: tuple[Any, ...], target: Any) -> None:
        self.identities[kind].append(identity)
        self.targets[kind].append(target)
        self.seen.add(identity)


class _FlushRecorder:
    """Records a flush's inserts, updates and deletes as Continuum's listeners would."""

    def __init__(self) -> None:
        self._classes: weakref.WeakKeyDictionary[type, _TrackedClass] = weakref.WeakKeyDictionary()

    def record(self, uow: Any, session: orm.Session, flush_context: Any) -> None:
        """Add this flush's writes to ``uow.operations`` as batches; call in ``after_flush``.

        One batch per class and kind, saves before deletes, as Continuum's listeners
        order them; as ``Operation`` objects when ``uow.operations`` is not a
        :class:`FlushOperations` (another unit of work class).
        """
        operations = uow.operations
        batched = isinstance(operations, FlushOperations)
        if batched and operations.pending:
            # An earlier flush's writes with no versions yet (it had no transaction)
            # become Operation objects, older than this flush's batches.
            operations.materialize()
        objects = operations._objects if batched else operations.objects
        identities = operations.identities if batched else {}
        known: dict[type, _Recording | None] = {}  # per flush: versioning can be toggled
        deleted: list[tuple[Any, _Recording]] = []
        # A new object taking the key of one deleted in the same flush is written as an
        # UPDATE of that row ("row switch"; the deleted one's delete is called off).
        switched = (
            {
                state.key
                for state, (is_delete, list_only) in flush_context.states.items()
                if is_delete and list_only and state.key is not None
            }
            if session.deleted
            else ()
        )
        for state, (is_delete, list_only) in flush_context.states.items():
            if list_only:
                continue
            cls = state.class_
            found = known.get(cls, _UNSEEN)
            if found is _UNSEEN:
                found = known[cls] = (
                    _Recording(self._tracked(cls), identities.setdefault(cls, set()))
                    if is_versioned(cls)
                    else None
                )
            if found is None:
                continue
            target = state.obj()
            if target is None:
                continue
            if is_delete:
                deleted.append((target, found))
                continue
            values = _instance_dict(target)
            # New before this flush: SQLAlchemy gives it its key when the flush is finalized.
            if state.key is None and not (
                switched and state.mapper.identity_key_from_instance(target) in switched
            ):
                identity = found.key(target, values)
                # As Operations.add_insert: deleted, then inserted again, is an update.
                again = identity in found.seen or (objects and (cls, identity) in objects)
                found.add(Operation.UPDATE if again else Operation.INSERT, identity, target)
            elif found.changed(state, values):
                found.add(Operation.UPDATE, found.key(target, values), target)
        for target, found in deleted:
            found.add(Operation.DELETE, found.key(target, _instance_dict(target)), target)
        for kinds in ((Operation.INSERT, Operation.UPDATE), (Operation.DELETE,)):
            for cls, found in known.items():
                if found is None:
                    continue
                for kind in kinds:
                    if not found.identities[kind]:
                        continue
                    batch = (cls, kind, found.identities[kind], found.targets[kind])
                    if batched:
                        operations.pending.append(batch)
                    else:
                        _operations_into(objects, batch, processed=False)

    def _tracked(self, cls: type) -> _TrackedClass:
        found = self._classes.get(cls)
        if found is None:
            found = self._classes[cls] = _TrackedClass(cls)
        return found


# Continuum's per-row listeners, which flush tracking replaces.
_ROW_EVENTS = ("after_insert", "after_update", "after_delete")


def install_flush_tracking(manager: Any) -> None:
    """Make ``manager`` record each flush's inserts, updates and deletes in one pass.

    Continuum records them with mapper listeners (``after_insert``, ``after_update``,
    ``after_delete``) that run once per row, find the unit of work through the session's
    connection every time, and rebuild each class's versioned properties and inspect
    every attribute of every updated row. This replaces the three with one ``after_flush``
    listener that walks the flush's states once (``flush_context.states``: until the
    flush is finalized, new objects have no identity key yet and SQLAlchemy keeps the
    attribute history), knows each class once, and records the same operations, in the
    same order of kinds (saves, then deletes) before Continuum's own ``after_flush`` writes
    the versions. Installed on the instance, so it outlives ``manager.reset()`` (which
    rebuilds Continuum's listener tables); call before ``make_versioned`` registers them.
    """
    recorder = _FlushRecorder()
    continuum_after_flush = manager.after_flush

    def after_flush(session: orm.Session, flush_context: Any) -> None:
        if manager.options["versioning"]:
            uow = manager.unit_of_work(session)
            if session is not uow.version_session:
                recorder.record(uow, session, flush_context)
        continuum_after_flush(session, flush_context)

    continuum_reset = manager.reset

    def drop_row_listeners() -> None:
        for event in _ROW_EVENTS:
            manager.mapper_listeners.pop(event, None)

    def reset() -> None:
        # Continuum rebuilds its listener tables here, from the manager's attributes.
        continuum_reset()
        drop_row_listeners()

    manager.after_flush = after_flush
    manager.reset = reset
    drop_row_listeners()
    manager.session_listeners["after_flush"] = after_flush
