"""Restoring with relations: which relationships a restore may bring back, and checks.

A relation is restored only when it is versioned and its history at the moment restored
to is still there; :func:`check_relation` says why not, before anything is written.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from vestige.catalogue import (
    association_key,
    association_table,
    is_versioned,
    record_key,
    require_versioned,
)
from vestige.errors import (
    ConfigError,
    HistoryPruned,
)
from vestige.history.reading import (
    Version,
    record_label,
)
from vestige.versioning.setup import versioning_manager

__all__ = [
    "PRUNED_RELATION",
    "UNKNOWN_RELATION",
    "UNVERSIONED_RELATION",
    "check_relation",
    "referred_key",
    "relationship",
]


UNKNOWN_RELATION = "{model} has no relationship {name!r}; relationships are: {known}"
UNVERSIONED_RELATION = "cannot restore relation {name!r}: {model} is not versioned"
PRUNED_RELATION = (
    "refusing to restore {record} with {relation!r}: the history of {related} up to "
    "transaction {tx} has been pruned, so the revert would lose or delete it; restore "
    "without that relation or to a later transaction"
)


def relationship(model: type[Any], name: str) -> orm.RelationshipProperty[Any]:
    mapper = sa.inspect(model)
    known = sorted(key for key, _ in mapper.relationships.items() if key != "versions")
    if name not in known:
        raise ConfigError(
            UNKNOWN_RELATION.format(model=model.__name__, name=name, known=", ".join(known))
        )
    prop: orm.RelationshipProperty[Any] = mapper.relationships[name]
    if not is_versioned(prop.mapper.class_, versioning_manager):
        raise ConfigError(UNVERSIONED_RELATION.format(name=name, model=prop.mapper.class_))
    return prop


def check_relation(
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
        referred = referred_key(model, target, prop)
        if referred is not None:
            candidates.add(referred)
    related = require_versioned(related_cls, versioning_manager)
    uncovered = _uncovered(
        session,
        related.version_table,
        [column.name for column in related.key_columns],
        candidates,
        target.transaction_id,
    )
    labels = [record_label(related_cls, k) for k in sorted(uncovered, key=repr)]
    if not labels and prop.secondary is not None and live is not None:
        links = _uncovered_links(session, model, key, target.transaction_id, prop)
        labels = [f"{prop.secondary} row {k}" for k in sorted(links, key=repr)]
    if labels:
        raise HistoryPruned(
            PRUNED_RELATION.format(
                record=record_label(model, key),
                relation=prop.key,
                related=labels[0],
                tx=target.transaction_id,
            )
        )


def referred_key(
    model: type[Any], target: Version, prop: orm.RelationshipProperty[Any]
) -> tuple[Any, ...] | None:
    """The key of the row a many-to-one relation referred to in the target version."""
    mapper = sa.inspect(model)
    by_remote = {
        remote: target.values.get(mapper.get_property_by_column(local).key)
        for local, remote in prop.local_remote_pairs
    }
    values = [by_remote.get(part.column) for part in record_key(prop.mapper.class_)]
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
    parent_values: dict[Any, Any] = dict(
        zip([part.column for part in record_key(model)], key, strict=True)
    )
    link_filter = [
        secondary_col == parent_values[parent_col]
        for parent_col, secondary_col in prop.synchronize_pairs
    ]
    columns = list(association_key(secondary))
    links = {
        tuple(row)
        for row in session.execute(
            sa.select(*[secondary.c[name] for name in columns]).where(*link_filter)
        )
    }
    association = association_table(secondary, versioning_manager)
    if association is None:  # no history at all: nothing reaches back to tx
        return links
    return _uncovered(session, association.version_table, columns, links, tx)


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
