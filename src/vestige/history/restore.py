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
that transaction, as Continuum does. The plan's types are in :mod:`vestige.history.plans`,
the checks of relations in :mod:`vestige.history.relations`.

About 430 lines in one module: planning and restoring share the staged revert
(``_revert``, ``_staged_rows``): the plan is what :func:`restore` makes again under the
lock and compares.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy_continuum.utils import versioned_column_properties

from vestige.catalogue import association_key, record_key, require_versioned
from vestige.errors import (
    HistoryPruned,
    RestoreConflict,
    RestoreRefused,
    first_line,
)
from vestige.history.plans import Action, RestorePlan, RestoreResult, RowChange
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
from vestige.history.relations import check_relation, referred_key, relationship
from vestige.versioning.setup import versioning_manager

__all__ = ["Action", "RestorePlan", "RestoreResult", "RowChange", "plan_restore", "restore"]

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


ARCHIVED_RELATIONS = (
    "the version of {record} at transaction {tx} is archived: its columns can be restored, "
    "its relations cannot; restore without --with {name}"
)


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
    properties = [relationship(model, name) for name in relations]
    if lock:
        _lock(session, model, key, properties)
    target = at(session, model, key, to)
    current = history(session, model, key, limit=1)[0]
    with _scratch(session) as scratch:
        live = None if current.operation is Operation.DELETE else scratch.get(model, key)
        for prop in properties:
            check_relation(scratch, model, key, target, live, prop)
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
        version_cls = require_versioned(model).version_model
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
    version_cls = require_versioned(model).version_model
    identity = dict(zip([name for name, _ in key_columns(model)], key, strict=True))
    identity["transaction_id"] = target.transaction_id
    # Continuum fails on a many-to-one that referred to nothing then; the record's own
    # foreign key column, reverted with the other columns, already says so.
    names = [
        name
        for name in relations
        if (prop := relationship(model, name)).direction is not orm.MANYTOONE
        or referred_key(model, target, prop) is not None
    ]
    version = session.get(version_cls, identity)
    if version is not None:
        return version.revert(relations=names)
    # an archived version (see vestige.history.use_archive): its columns are at hand,
    # the history of its relations is not
    if relations:
        raise HistoryPruned(
            ARCHIVED_RELATIONS.format(
                record=record_label(model, key), tx=target.transaction_id, name=relations[0]
            )
        )
    live = session.get(model, key)
    if live is None:
        live = model()
        session.add(live)
    for name, value in target.values.items():
        setattr(live, name, value)
    return live


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
    row_key = tuple(values[part.attribute] for part in record_key(mapper.class_))
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
            columns = association_key(secondary)
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
