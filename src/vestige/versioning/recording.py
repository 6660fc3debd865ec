"""Flush recording: one pass over each flush instead of Continuum's per-row listeners.

:func:`install_flush_tracking` replaces Continuum's insert, update and delete listeners;
the writes of a flush are kept in batches by :class:`FlushOperations`, from which the
unit of work (:mod:`vestige.versioning.unit_of_work`) writes the versions.
"""

from __future__ import annotations

import operator
import weakref
from collections.abc import Iterator
from itertools import chain
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.orm.base import NEVER_SET, NO_VALUE, PASSIVE_NO_INITIALIZE, PASSIVE_NO_RESULT
from sqlalchemy_continuum._compat import get_primary_keys
from sqlalchemy_continuum.operation import Operation, Operations
from sqlalchemy_continuum.utils import (
    is_versioned,
    versioned_column_properties,
)

from vestige.versioning.keys import key_getter, key_reader

__all__ = ["FlushOperations", "install_flush_tracking"]


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
        self.key = key_reader(attributes, self.key_of)

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
