"""Restoring a record to an older version, or bringing a deleted record back.

The restore itself is Continuum's ``version.revert(relations=...)``; what Vestige adds
is refusing when the history it needs is gone. Continuum rebuilds a relation from the
versions of the related rows in force at the target transaction, and deletes (or
unlinks) live related rows it finds no version for: if that history was pruned, a
plain revert deletes live rows. :func:`plan_restore` checks, before anything is
written, that every related row that is live now (and, for a many-to-one relation,
the row referred to then) has versions reaching back to the target transaction, or
was created after it::

    plan = plan_restore(session, Package, 7, to=1234, relations=["releases"])
    print(plan.changes)                       # what the record's columns will become
    package = restore(session, Package, 7, to=1234, relations=["releases"])
    session.commit()                          # restore flushes; the caller commits

Restoring with relations also reverts the related records themselves to their state at
that transaction, as Continuum does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy_continuum import version_class
from sqlalchemy_continuum.utils import version_table

from vestige.errors import ConfigError, HistoryPruned, RestoreRefused, first_line
from vestige.history import (
    Change,
    Operation,
    Version,
    at,
    diff,
    history,
    key_columns,
    normalize_key,
    record_label,
)
from vestige.versioning import versioning_manager

__all__ = ["RestorePlan", "plan_restore", "restore"]

UNKNOWN_RELATION = "{model} has no relationship {name!r}; relationships are: {known}"
UNVERSIONED_RELATION = "cannot restore relation {name!r}: {model} is not versioned"
PRUNED_RELATION = (
    "refusing to restore {record} with {relation!r}: the history of {related} up to "
    "transaction {tx} has been pruned, so the revert would lose or delete it; restore "
    "without that relation or to a later transaction"
)
CONFLICT = "cannot restore {record}: the database refused the restored row ({reason})"


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
    """

    model: type[Any]
    key: tuple[Any, ...]
    target: Version
    current: Version
    changes: tuple[Change, ...]
    relations: tuple[str, ...]

    @property
    def undeletes(self) -> bool:
        """Whether the record is deleted now and the restore brings it back."""
        return self.current.operation is Operation.DELETE


def plan_restore(
    session: orm.Session,
    model: type[Any],
    key: Any,
    *,
    to: int | datetime,
    relations: Sequence[str] = (),
) -> RestorePlan:
    """Check that a record can be restored to its state at ``to``, writing nothing.

    Args:
        session: The session to read with.
        model: The versioned mapped class.
        key: The primary key (a value, a tuple, or a mapping).
        to: A transaction id or a timestamp; the version in force then is restored.
        relations: Names of relationships of ``model`` to restore as well.

    Raises:
        RecordNotFound: The record has no history, or did not exist at ``to``.
        HistoryPruned: The target version, or history a relation needs, was pruned.
        ConfigError: A relation name is not a relationship of the model.
    """
    key = normalize_key(model, key)
    target = at(session, model, key, to)
    current = history(session, model, key, limit=1)[0]
    properties = [_relationship(model, name) for name in relations]
    live = None if current.operation is Operation.DELETE else session.get(model, key)
    for prop in properties:
        _check_relation(session, model, key, target, live, prop)
    if current.operation is Operation.DELETE:
        found = tuple(
            Change(name, None, value) for name, value in target.values.items() if value is not None
        )
    else:
        found = tuple(diff(current, target))
    return RestorePlan(model, key, target, current, found, tuple(relations))


def restore(
    session: orm.Session,
    model: type[Any],
    key: Any,
    *,
    to: int | datetime,
    relations: Sequence[str] = (),
) -> Any:
    """Bring a record (and, if asked, its relations) back to its state at ``to``.

    Checks first (:func:`plan_restore`), then reverts with Continuum and flushes, so
    the restore is written as a new version in the current transaction; the caller
    commits. A deleted record is inserted again with its key.

    Returns:
        The live object, restored.

    Raises:
        RecordNotFound: The record has no history, or did not exist at ``to``.
        HistoryPruned: The history the restore needs was pruned; nothing was changed.
        ConfigError: A relation name is not a relationship of the model.
        RestoreRefused: The database rejected the restored row (a unique value is now
            taken, a referenced row is gone); roll the session back.
    """
    plan = plan_restore(session, model, key, to=to, relations=relations)
    try:
        # Continuum adds a re-created record to the session only after its relations are
        # rebuilt; an autoflush in between would try to link rows to an unsaved object.
        with session.no_autoflush:
            restored = _version_object(session, plan).revert(relations=list(plan.relations))
        session.flush()
    except sa.exc.IntegrityError as exc:
        raise RestoreRefused(
            CONFLICT.format(record=record_label(model, plan.key), reason=first_line(exc))
        ) from exc
    return restored


def _version_object(session: orm.Session, plan: RestorePlan) -> Any:
    """Continuum's version object for the plan's target, which ``revert`` works on."""
    version_cls = version_class(plan.model)
    names = [name for name, _ in key_columns(plan.model)]
    identity = dict(zip(names, plan.key, strict=True))
    identity["transaction_id"] = plan.target.transaction_id
    return session.get_one(version_cls, identity)


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
