"""Restoring a record to an older version, or bringing a deleted record back.

The restore itself is Continuum's ``version.revert(relations=...)``; what Vestige adds:

* **A plan of every row it writes.** :func:`plan_restore` stages the revert in a
  throwaway session on the same connection and lists each row of the record and of its
  relations that the restore would insert, update or delete, with the values
  (:class:`RowChange`); nothing is flushed.
* **Refusing when the history it needs is gone.** Continuum rebuilds a relation from
  the versions of the related rows in force at the target transaction, and deletes (or
  unlinks) live related rows it finds no version for: if that history was pruned, a
  plain revert deletes live rows. The plan checks that every related row that is live
  now (and, for a many-to-one relation, the row referred to then) has versions reaching
  back to the target transaction, or was created after it.
* **No half-applied restore.** :func:`restore` locks the record first (``SELECT ... FOR
  UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), plans again under the lock,
  refuses if that plan differs from the one the caller showed (``expected``), and writes
  every column of every row it updates, so the result is the target whatever the
  session had loaded before::

    plan = plan_restore(session, Package, 7, to=1234, relations=["releases"])
    for row in plan.rows:                     # what will be inserted, updated, deleted
        print(row.action, row.label, row.changes)
    result = restore(session, Package, 7, to=1234, relations=["releases"], expected=plan)
    session.commit()                          # restore flushes; the caller commits
    print(result.transaction_id)              # the transaction that wrote it

Restoring with relations also reverts the related records themselves to their state at
that transaction, as Continuum does.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy_continuum import version_class
from sqlalchemy_continuum.utils import version_table, versioned_column_properties

from vestige.errors import (
    ConfigError,
    HistoryPruned,
    RestoreConflict,
    RestoreRefused,
    first_line,
)
from vestige.history.queries import key_columns, normalize_key
from vestige.history.reading import (
    Change,
    Operation,
    Version,
    at,
    diff,
    history,
    record_label,
)
from vestige.versioning.setup import versioning_manager

__all__ = ["Action", "RestorePlan", "RestoreResult", "RowChange", "plan_restore", "restore"]

UNKNOWN_RELATION = "{model} has no relationship {name!r}; relationships are: {known}"
UNVERSIONED_RELATION = "cannot restore relation {name!r}: {model} is not versioned"
PRUNED_RELATION = (
    "refusing to restore {record} with {relation!r}: the history of {related} up to "
    "transaction {tx} has been pruned, so the revert would lose or delete it; restore "
    "without that relation or to a later transaction"
)
CONFLICT = "cannot restore {record}: the database refused the restored row ({reason})"
CHANGED = (
    "{record} changed after the plan was made (its newest version is now transaction {tx}); "
    "nothing was restored: run the restore again to see the new plan"
)
BUSY = (
    "{record} is being changed by another transaction ({reason}); nothing was restored: "
    "run the restore again once that transaction has ended"
)
# PostgreSQL's lock_not_available (lock_timeout, NOWAIT) and SQLite's busy timeout.
_LOCK_NOT_AVAILABLE = "55P03"
_SQLITE_BUSY = "database is locked"


class Action(enum.StrEnum):
    """What a restore does to one row."""

    INSERT = "insert"
    UPDATE = "update"
    DELETE = "delete"


@dataclass(frozen=True)
class RowChange:
    """One row a restore inserts, updates or deletes.

    Attributes:
        action: Insert, update or delete.
        table: The table the row is in.
        model: The mapped class's name; ``None`` for a row of an association table.
        key: The row's primary key values (every column for a keyless association row).
        old: The row as it is now, every column (empty for an insert).
        new: The row as the restore writes it, every column (empty for a delete).
    """

    action: Action
    table: str
    model: str | None
    key: tuple[Any, ...]
    old: Mapping[str, Any] = field(default_factory=dict)
    new: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """``Release 3``, or ``package_maintainer 1,2`` for an association row."""
        return f"{self.model or self.table} {','.join(str(part) for part in self.key)}"

    @property
    def changes(self) -> tuple[Change, ...]:
        """The columns that change: all of them for an insert or a delete."""
        if self.action is Action.INSERT:
            return tuple(Change(name, None, value) for name, value in self.new.items())
        if self.action is Action.DELETE:
            return tuple(Change(name, value, None) for name, value in self.old.items())
        return tuple(
            Change(name, self.old.get(name), value)
            for name, value in self.new.items()
            if self.old.get(name) != value
        )

    def to_dict(self) -> dict[str, Any]:
        """The row change as plain data (values as the database returned them)."""
        return {
            "action": self.action.value,
            "table": self.table,
            "model": self.model,
            "key": list(self.key),
            "old": dict(self.old) if self.action is not Action.INSERT else None,
            "new": dict(self.new) if self.action is not Action.DELETE else None,
            "changes": {c.field: {"old": c.old, "new": c.new} for c in self.changes},
        }


@dataclass(frozen=True)
class RestorePlan:
    """What a restore will do, checked against the history it needs.

    Attributes:
        model: The mapped class.
        key: The record's primary key values.
        target: The version that will be brought back (in force at the time asked for).
        current: The record's newest version (its live state, or its delete).
        changes: Column changes from the current state to the target's.
        relations: The relationships restored with it.
        rows: Every row the restore inserts, updates or deletes: the record's first,
            then the related rows by table and key. Empty: nothing to restore.
    """

    model: type[Any]
    key: tuple[Any, ...]
    target: Version
    current: Version
    changes: tuple[Change, ...]
    relations: tuple[str, ...]
    rows: tuple[RowChange, ...] = ()

    @property
    def undeletes(self) -> bool:
        """Whether the record is deleted now and the restore brings it back."""
        return self.current.operation is Operation.DELETE

    def to_dict(self) -> dict[str, Any]:
        """The plan as plain data: the record, the target version, and every row change."""
        return {
            "model": self.model.__name__,
            "key": list(self.key),
            "target": {
                "transaction_id": self.target.transaction_id,
                "issued_at": self.target.issued_at,
                "user_id": self.target.user_id,
                "user": self.target.user or None,
            },
            "current_transaction_id": self.current.transaction_id,
            "undeletes": self.undeletes,
            "relations": list(self.relations),
            "rows": [row.to_dict() for row in self.rows],
        }


@dataclass(frozen=True)
class RestoreResult:
    """What a restore wrote.

    Attributes:
        plan: The plan it carried out, made under the lock.
        record: The live object, restored.
        transaction_id: The transaction that wrote the restore, as Continuum recorded it
            at the flush; ``None`` when there was nothing to write.
    """

    plan: RestorePlan
    record: Any
    transaction_id: int | None

    def to_dict(self) -> dict[str, Any]:
        """The result as plain data."""
        return {"plan": self.plan.to_dict(), "transaction_id": self.transaction_id}


def plan_restore(
    session: orm.Session,
    model: type[Any],
    key: Any,
    *,
    to: int | datetime,
    relations: Sequence[str] = (),
    lock: bool = False,
) -> RestorePlan:
    """Check that a record can be restored to its state at ``to``, and list every row
    the restore would write; writes nothing.

    The revert is staged in a throwaway session on ``session``'s connection (so it reads
    what ``session`` would read) and never flushed.

    Args:
        session: The session to read with.
        model: The versioned mapped class.
        key: The primary key (a value, a tuple, or a mapping).
        to: A transaction id or a timestamp; the version in force then is restored.
        relations: Names of relationships of ``model`` to restore as well.
        lock: Lock the record first, as :func:`restore` does, so the plan stays true
            until ``session``'s transaction ends.

    Raises:
        RecordNotFound: The record has no history, or did not exist at ``to``.
        HistoryPruned: The target version, or history a relation needs, was pruned.
        ConfigError: A relation name is not a relationship of the model.
        RestoreConflict: ``lock`` was asked and another transaction holds the record
            past the database's lock or busy timeout.
    """
    key = normalize_key(model, key)
    properties = [_relationship(model, name) for name in relations]
    if lock:
        _lock(session, model, key, properties)
    target = at(session, model, key, to)
    current = history(session, model, key, limit=1)[0]
    with _scratch(session) as scratch:
        live = None if current.operation is Operation.DELETE else scratch.get(model, key)
        for prop in properties:
            _check_relation(scratch, model, key, target, live, prop)
        with scratch.no_autoflush:
            _revert(scratch, model, key, target, relations)
            rows = _staged_rows(scratch, model, key)
    if current.operation is Operation.DELETE:
        found = tuple(
            Change(name, None, value) for name, value in target.values.items() if value is not None
        )
    else:
        found = tuple(diff(current, target))
    return RestorePlan(model, key, target, current, found, tuple(relations), rows)


def restore(
    session: orm.Session,
    model: type[Any],
    key: Any,
    *,
    to: int | datetime,
    relations: Sequence[str] = (),
    expected: RestorePlan | None = None,
) -> RestoreResult:
    """Bring a record (and, if asked, its relations) back to its state at ``to``.

    Flushes what the session holds, locks the record (``SELECT ... FOR UPDATE`` of the
    row, its open version and its related rows on PostgreSQL; ``BEGIN IMMEDIATE`` on
    SQLite), plans under the lock (:func:`plan_restore`), then reverts with Continuum
    and flushes, writing every versioned column of each row it updates. The restore is
    a new version in the current transaction, which keeps the lock; the caller commits.
    A deleted record is inserted again with its key.

    Args:
        session: The session to write with; its loaded objects are expired, so the
            revert starts from the rows as they are under the lock.
        model: The versioned mapped class.
        key: The primary key (a value, a tuple, or a mapping).
        to: A transaction id or a timestamp; the version in force then is restored.
        relations: Names of relationships of ``model`` to restore as well.
        expected: The plan the user was shown; if the plan made under the lock
            differs (the record or a row the restore touches changed since), nothing
            is written.

    Returns:
        The plan carried out, the restored object, and the transaction that wrote it.

    Raises:
        RecordNotFound: The record has no history, or did not exist at ``to``.
        HistoryPruned: The history the restore needs was pruned; nothing was changed.
        ConfigError: A relation name is not a relationship of the model.
        RestoreConflict: The record changed since ``expected`` was made, or another
            transaction holds it past the lock or busy timeout; nothing was written.
            Roll the session back to release the lock.
        RestoreRefused: The database rejected the restored row (a unique value is now
            taken, a referenced row is gone); roll the session back.
    """
    session.flush()
    plan = plan_restore(session, model, key, to=to, relations=relations, lock=True)
    if expected is not None and _fingerprint(expected) != _fingerprint(plan):
        raise _changed(plan)
    # The plan was made in another session: this one may hold the rows as they were
    # before the lock, and the revert only writes what differs from what it holds.
    session.expire_all()
    if not plan.rows:
        return RestoreResult(plan, session.get(model, plan.key), None)
    try:
        # Continuum adds a re-created record to the session only after its relations are
        # rebuilt; an autoflush in between would try to link rows to an unsaved object.
        with session.no_autoflush:
            restored = _revert(session, model, plan.key, plan.target, plan.relations)
            if _staged_rows(session, model, plan.key) != plan.rows:
                raise _changed(plan)
            _write_whole_rows(session)
        session.flush()
    except sa.exc.IntegrityError as exc:
        raise RestoreRefused(
            CONFLICT.format(record=record_label(model, plan.key), reason=first_line(exc))
        ) from exc
    transaction = versioning_manager.unit_of_work(session).current_transaction
    return RestoreResult(plan, restored, None if transaction is None else transaction.id)


def _fingerprint(plan: RestorePlan) -> tuple[Any, ...]:
    """What must not change between the plan shown and the one carried out."""
    return (plan.current.transaction_id, plan.target.transaction_id, plan.rows)


def _changed(plan: RestorePlan) -> RestoreConflict:
    record = record_label(plan.model, plan.key)
    return RestoreConflict(CHANGED.format(record=record, tx=plan.current.transaction_id))


@contextmanager
def _scratch(session: orm.Session) -> Iterator[orm.Session]:
    """A session on ``session``'s connection whose staged changes are thrown away."""
    scratch = orm.Session(bind=session.connection(), autoflush=False)
    try:
        yield scratch
    finally:
        scratch.close()


def _lock(
    session: orm.Session,
    model: type[Any],
    key: tuple[Any, ...],
    properties: Sequence[orm.RelationshipProperty[Any]],
) -> None:
    """Hold the record against other writers until ``session``'s transaction ends.

    On PostgreSQL, the row and its open version (a writer of the record closes that
    version, so a deleted record is held too) and the rows related to it now; new
    related rows wait as well, since their foreign key check needs the record's row.
    On SQLite, the database's write lock.
    """
    connection = session.connection()
    record = record_label(model, key)
    try:
        if connection.dialect.name == "sqlite":
            driver = connection.connection.dbapi_connection
            # A transaction that already wrote holds the write lock already.
            if driver is not None and not getattr(driver, "in_transaction", True):
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            return
        identity = dict(zip([name for name, _ in key_columns(model)], key, strict=True))
        version_cls = version_class(model)
        session.execute(
            sa.select(*[getattr(version_cls, name) for name in identity])
            .filter_by(**identity, end_transaction_id=None)
            .with_for_update()
        ).all()
        live = session.execute(
            sa.select(model).filter_by(**identity).with_for_update(of=model)
        ).scalar_one_or_none()
        for prop in properties:
            if live is not None:
                related = prop.mapper.class_
                session.execute(
                    sa.select(related)
                    .where(orm.with_parent(live, getattr(model, prop.key)))
                    .with_for_update(of=related)
                ).all()
    except sa.exc.OperationalError as exc:
        if not _lock_unavailable(exc):
            raise
        raise RestoreConflict(BUSY.format(record=record, reason=first_line(exc))) from exc


def _lock_unavailable(exc: sa.exc.OperationalError) -> bool:
    orig = exc.orig
    return getattr(orig, "pgcode", None) == _LOCK_NOT_AVAILABLE or _SQLITE_BUSY in str(orig)


def _revert(
    session: orm.Session,
    model: type[Any],
    key: tuple[Any, ...],
    target: Version,
    relations: Sequence[str],
) -> Any:
    """Stage Continuum's revert of the target version in ``session`` (call without
    autoflush); returns the live object."""
    version_cls = version_class(model)
    identity = dict(zip([name for name, _ in key_columns(model)], key, strict=True))
    identity["transaction_id"] = target.transaction_id
    # Continuum fails on a many-to-one that referred to nothing then; the record's own
    # foreign key column, reverted with the other columns, already says so.
    names = [
        name
        for name in relations
        if (prop := _relationship(model, name)).direction is not orm.MANYTOONE
        or _referred_key(model, target, prop) is not None
    ]
    return session.get_one(version_cls, identity).revert(relations=names)


def _staged_rows(
    session: orm.Session, model: type[Any], key: tuple[Any, ...]
) -> tuple[RowChange, ...]:
    """The rows a flush of ``session`` would insert, update or delete, the record first."""
    found: dict[tuple[str, Action, tuple[Any, ...]], RowChange] = {}
    links: dict[tuple[str, tuple[Any, ...]], tuple[Action, dict[str, Any]]] = {}
    for obj in list(session.new):
        _add(found, _row(obj, Action.INSERT))
        _collect_links(obj, links, deleted=False)
    for obj in list(session.deleted):
        _add(found, _row(obj, Action.DELETE))
        _collect_links(obj, links, deleted=True)
    for obj in list(session.dirty):
        change = _row(obj, Action.UPDATE)
        if change.changes:
            _add(found, change)
        _collect_links(obj, links, deleted=False)
    for (table_name, link_key), (action, values) in links.items():
        row = dict(values) if action is Action.DELETE else {}
        new = dict(values) if action is Action.INSERT else {}
        _add(found, RowChange(action, table_name, None, link_key, row, new))
    first = model.__name__
    return tuple(
        sorted(
            found.values(),
            key=lambda row: (
                (row.model, row.key) != (first, key),
                row.table,
                repr(row.key),
                row.action.value,
            ),
        )
    )


def _add(found: dict[tuple[str, Action, tuple[Any, ...]], RowChange], row: RowChange) -> None:
    found[(row.table, row.action, row.key)] = row


def _row(obj: Any, action: Action) -> RowChange:
    """One mapped object's row change, with every column before and after."""
    state = sa.inspect(obj)
    mapper = state.mapper
    old: dict[str, Any] = {}
    new: dict[str, Any] = {}
    for prop in mapper.column_attrs:
        history_ = state.attrs[prop.key].load_history()
        before = history_.deleted or history_.unchanged
        after = history_.added or history_.unchanged
        old[prop.key] = before[0] if before else None
        new[prop.key] = after[0] if after else None
    values = new if action is Action.INSERT else old
    row_key = tuple(values[mapper.get_property_by_column(col).key] for col in mapper.primary_key)
    return RowChange(
        action,
        mapper.local_table.name,
        mapper.class_.__name__,
        row_key,
        {} if action is Action.INSERT else old,
        {} if action is Action.DELETE else new,
    )


def _collect_links(
    obj: Any,
    links: dict[tuple[str, tuple[Any, ...]], tuple[Action, dict[str, Any]]],
    *,
    deleted: bool,
) -> None:
    """Association rows the flush inserts or deletes for ``obj``'s many-to-many relations.

    The same row seen from both sides is counted once; one both added and removed
    is not changed.
    """
    state = sa.inspect(obj)
    for prop in state.mapper.relationships:
        secondary = prop.secondary
        if not isinstance(secondary, sa.Table) or prop.viewonly:
            continue
        history_ = state.attrs[prop.key].load_history()
        if deleted:
            changes = [(Action.DELETE, child) for child in (*history_.unchanged, *history_.deleted)]
        else:
            changes = [(Action.INSERT, child) for child in history_.added]
            changes += [(Action.DELETE, child) for child in history_.deleted]
        for action, child in changes:
            values = _link_values(obj, child, prop)
            columns = [col.name for col in secondary.primary_key] or list(values)
            link_key = (secondary.name, tuple(values[name] for name in columns))
            known = links.get(link_key)
            if known is not None and known[0] is not action:
                del links[link_key]
            else:
                links[link_key] = (action, values)


def _link_values(parent: Any, child: Any, prop: orm.RelationshipProperty[Any]) -> dict[str, Any]:
    parent_mapper = sa.inspect(parent).mapper
    child_mapper = sa.inspect(child).mapper
    values: dict[str, Any] = {}
    for local, remote in prop.synchronize_pairs:
        values[remote.name] = getattr(parent, parent_mapper.get_property_by_column(local).key)
    for local, remote in prop.secondary_synchronize_pairs or ():
        values[remote.name] = getattr(child, child_mapper.get_property_by_column(local).key)
    assert isinstance(prop.secondary, sa.Table)
    return {col.name: values.get(col.name) for col in prop.secondary.c}


def _write_whole_rows(session: orm.Session) -> None:
    """Make the flush write every versioned column of each updated row, not only the
    ones that differ from what the session holds."""
    for obj in session.dirty:
        if session.is_modified(obj, include_collections=False):
            for prop in versioned_column_properties(obj):
                orm.attributes.flag_modified(obj, prop.key)


def _relationship(model: type[Any], name: str) -> orm.RelationshipProperty[Any]:
    mapper = sa.inspect(model)
    known = sorted(key for key, _ in mapper.relationships.items() if key != "versions")
    if name not in known:
        raise ConfigError(
            UNKNOWN_RELATION.format(model=model.__name__, name=name, known=", ".join(known))
        )
    prop: orm.RelationshipProperty[Any] = mapper.relationships[name]
    if prop.mapper.class_ not in versioning_manager.version_class_map:
        raise ConfigError(UNVERSIONED_RELATION.format(name=name, model=prop.mapper.class_))
    return prop


def _check_relation(
    session: orm.Session,
    model: type[Any],
    key: tuple[Any, ...],
    target: Version,
    live: Any,
    prop: orm.RelationshipProperty[Any],
) -> None:
    """Raise if Continuum would rebuild this relation from history that was pruned."""
    related_cls = prop.mapper.class_
    related_mapper = prop.mapper
    candidates: set[tuple[Any, ...]] = set()
    if live is not None:
        value = getattr(live, prop.key)
        children = value if prop.uselist else [value] if value is not None else []
        candidates |= {tuple(related_mapper.primary_key_from_instance(c)) for c in children}
    if prop.direction is orm.MANYTOONE:
        referred = _referred_key(model, target, prop)
        if referred is not None:
            candidates.add(referred)
    columns = [col.name for col in related_mapper.primary_key]
    uncovered = _uncovered(
        session,
        sa.inspect(version_class(related_cls)).local_table,
        columns,
        candidates,
        target.transaction_id,
    )
    related = [record_label(related_cls, k) for k in sorted(uncovered, key=repr)]
    if not related and prop.secondary is not None and live is not None:
        links = _uncovered_links(session, model, key, target.transaction_id, prop)
        related = [f"{prop.secondary} row {k}" for k in sorted(links, key=repr)]
    if related:
        raise HistoryPruned(
            PRUNED_RELATION.format(
                record=record_label(model, key),
                relation=prop.key,
                related=related[0],
                tx=target.transaction_id,
            )
        )


def _referred_key(
    model: type[Any], target: Version, prop: orm.RelationshipProperty[Any]
) -> tuple[Any, ...] | None:
    """The key of the row a many-to-one relation referred to in the target version."""
    mapper = sa.inspect(model)
    by_remote = {
        remote: target.values.get(mapper.get_property_by_column(local).key)
        for local, remote in prop.local_remote_pairs
    }
    values = [by_remote.get(col) for col in prop.mapper.primary_key]
    if any(value is None for value in values):
        return None
    return tuple(values)


def _uncovered_links(
    session: orm.Session,
    model: type[Any],
    key: tuple[Any, ...],
    tx: int,
    prop: orm.RelationshipProperty[Any],
) -> set[tuple[Any, ...]]:
    """Live association rows whose history does not reach back to ``tx``."""
    assert prop.secondary is not None
    secondary = prop.secondary
    assert isinstance(secondary, sa.Table)
    parent_values = dict(zip(sa.inspect(model).primary_key, key, strict=True))
    link_filter = [
        secondary_col == parent_values[parent_col]
        for parent_col, secondary_col in prop.synchronize_pairs
    ]
    columns = [col.name for col in secondary.primary_key] or [col.name for col in secondary.c]
    links = {
        tuple(row)
        for row in session.execute(
            sa.select(*[secondary.c[name] for name in columns]).where(*link_filter)
        )
    }
    return _uncovered(session, version_table(secondary), columns, links, tx)


def _uncovered(
    session: orm.Session,
    table: sa.Table,
    columns: list[str],
    keys: set[tuple[Any, ...]],
    tx: int,
) -> set[tuple[Any, ...]]:
    """Keys whose versions neither reach back to ``tx`` nor start with their insert.

    A prefix-pruned chain that still holds a version written at or before ``tx`` knows
    the row's state then; one that starts with the row's insert knows it did not exist.
    """
    if not keys:
        return set()
    key_cols = [table.c[name] for name in columns]
    rows = session.execute(
        sa.select(*key_cols, table.c.transaction_id, table.c.operation_type)
        .where(
            sa.or_(
                *[
                    sa.and_(*[col == value for col, value in zip(key_cols, k, strict=True)])
                    for k in keys
                ]
            )
        )
        .order_by(*key_cols, table.c.transaction_id)
    )
    covered: set[tuple[Any, ...]] = set()
    seen: set[tuple[Any, ...]] = set()
    for *values, transaction_id, operation_type in rows:
        row_key = tuple(values)
        first = row_key not in seen
        seen.add(row_key)
        if (first and operation_type == 0) or transaction_id <= tx:
            covered.add(row_key)
    return {k for k in keys if k not in covered}
