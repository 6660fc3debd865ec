"""How history is read in SQL: one statement shape per model, built once, and its keys.

The version tables of a model (joined and single-table inheritance included), its key
columns, the transaction columns and user label that go with each version, and the
order the end-transaction pointers draw (commit order, H2) rather than id order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.dialects import postgresql

from vestige.catalogue import (
    association_tables,
    record_key,
    require_versioned,
    version_columns,
    versioned_models,
)
from vestige.errors import ConfigError
from vestige.versioning.change_context import CONTEXT_COLUMN
from vestige.versioning.setup import versioning_manager

__all__ = [
    "BAD_CONTEXT_FILTER",
    "BAD_KEY",
    "NO_CONTEXT_COLUMN",
    "Shape",
    "context_criteria",
    "in_commit_order",
    "key_columns",
    "label_attribute",
    "newest_in_commit_order",
    "normalize_key",
    "shape_of",
    "single_table_filter",
    "transaction_columns",
    "transaction_table",
    "user_labels",
    "versioned_tables",
]

BAD_KEY = "bad key {key!r} for {model}: expected {expected}"
BAD_CONTEXT_FILTER = (
    "cannot filter changes on context {key}={value!r}: compare a string, number, boolean or None"
)
NO_CONTEXT_COLUMN = (
    "cannot filter changes on context {key!r}: the transaction table has no context column "
    "(make_versioned(context_column=True) and a migration that adds it)"
)
_USER_LABELS = ("username", "name", "email")


def label_attribute(user_cls: type[Any]) -> str | None:
    """The column attribute that names a user: ``username``, ``name`` or ``email``."""
    mapper = sa.inspect(user_cls)
    for name in _USER_LABELS:
        prop = mapper.attrs.get(name)
        if isinstance(prop, orm.ColumnProperty) and isinstance(prop.columns[0], sa.Column):
            return name
    return None


def key_columns(model: type[Any]) -> list[tuple[str, sa.Column[Any]]]:
    """The attribute names and columns of a mapped class's primary key, in order."""
    return _key_columns(model)


def normalize_key(model: type[Any], key: Any) -> tuple[Any, ...]:
    """A primary key given as a value, a tuple or a mapping, as a tuple in key order.

    Raises:
        ConfigError: The key has the wrong number of parts or names.
    """
    columns = _key_columns(model)
    names = [name for name, _ in columns]
    if isinstance(key, Mapping):
        if set(key) != set(names):
            raise ConfigError(
                BAD_KEY.format(key=dict(key), model=model.__name__, expected=", ".join(names))
            )
        return tuple(key[name] for name in names)
    values = tuple(key) if isinstance(key, tuple | list) else (key,)
    if len(values) != len(names):
        raise ConfigError(BAD_KEY.format(key=key, model=model.__name__, expected=", ".join(names)))
    return values


def versioned_tables() -> list[tuple[sa.Table, list[str], sa.Column[Any] | None, dict[Any, str]]]:
    """Every version table that records whole records, once per inheritance hierarchy.

    Each comes as (table, key column names, discriminator column or ``None``, class name
    by discriminator value, with ``None`` for the hierarchy's base): a row is labelled
    with the class it really was, never with every class that shares the table.
    """
    found = [
        (
            entry.version_table,
            [column.name for column in entry.key_columns],
            entry.version_discriminator,
            dict(entry.names_by_identity),
        )
        for entry in versioned_models(versioning_manager).values()
        if entry.model is entry.root
    ]
    found += [
        (association.version_table, list(association.key), None, {None: association.table.name})
        for association in association_tables(versioning_manager)
    ]
    return sorted(found, key=lambda item: item[3][None])


def _key_columns(model: type[Any]) -> list[tuple[str, sa.Column[Any]]]:
    return [(part.attribute, part.column) for part in record_key(model)]


@dataclass(frozen=True)
class Shape:
    """One model's versions as Vestige reads them: value columns in mapper order.

    For a joined-table inheritance subclass the versions live in one version table per
    level (``document_version`` joined to ``invoice_version`` on key and transaction);
    for a single-table subclass, in its base's version table, filtered on the
    discriminator. ``selectable`` and ``criteria`` say which.
    """

    model: type[Any]
    selectable: sa.FromClause
    criteria: tuple[sa.ColumnElement[bool], ...]
    fields: tuple[str, ...]
    columns: tuple[sa.Column[Any], ...]
    key_fields: tuple[str, ...]
    transaction_id: sa.Column[Any]
    end_transaction_id: sa.Column[Any]
    operation_type: sa.Column[Any]

    def key_params(self, key: Any) -> dict[str, Any]:
        """Values for the ``key_0, key_1, ...`` parameters of :meth:`statement`."""
        return {f"key_{i}": value for i, value in enumerate(normalize_key(self.model, key))}

    def statement(self, kind: str) -> sa.Select[Any]:
        """The query of one kind for this model, built once: reusing the statement
        object spares building it and its cache key on every call."""
        found = _STATEMENTS.get((self.model, kind))
        if found is None:
            found = _STATEMENTS[(self.model, kind)] = _build_statement(self, kind)
        return found


_STATEMENTS: dict[tuple[type[Any], str], sa.Select[Any]] = {}


def _build_statement(shape: Shape, kind: str) -> sa.Select[Any]:
    by_field = dict(zip(shape.fields, shape.columns, strict=True))
    query = _select_versions(shape).where(
        *shape.criteria,
        *[by_field[name] == sa.bindparam(f"key_{i}") for i, name in enumerate(shape.key_fields)],
    )
    query = query.order_by(shape.transaction_id.desc())
    if kind == "history":
        return query
    assert kind == "history_limit"
    return query.limit(sa.bindparam("limit", type_=sa.Integer))


_SHAPES: dict[type[Any], Shape] = {}


def shape_of(model: type[Any]) -> Shape:
    if model not in _SHAPES:
        _SHAPES[model] = _build_shape(model)
    return _SHAPES[model]


def _build_shape(model: type[Any]) -> Shape:
    entry = require_versioned(model, versioning_manager)
    mapper = sa.inspect(entry.version_model)
    names = version_columns(versioning_manager)
    internal = (names.transaction_id, names.end_transaction_id, names.operation_type)
    pairs = [
        (prop.key, prop.columns[0])
        for prop in mapper.column_attrs
        if prop.key not in internal and isinstance(prop.columns[0], sa.Column)
    ]
    root = entry.root_version_table
    discriminator = entry.version_discriminator
    tx_name, end_name, op_name = internal
    return Shape(
        model=model,
        selectable=entry.version_selectable,
        # a single-table subclass's rows of the version table it shares with its base
        criteria=(discriminator.in_(entry.identities),)
        if entry.single and discriminator is not None
        else (),
        fields=tuple(key for key, _ in pairs),
        columns=tuple(column for _, column in pairs),
        key_fields=tuple(name for name, _ in _key_columns(model)),
        transaction_id=root.c[tx_name],
        end_transaction_id=root.c[end_name],
        operation_type=root.c[op_name],
    )


def in_commit_order(shape: Shape, rows: Sequence[Sequence[Any]]) -> list[Sequence[Any]]:
    """One record's version rows, oldest first along their end pointers (H2).

    ``rows`` come newest id first. If they do not form one chain (a hole, which no
    Vestige pruner leaves), they are returned in id order, oldest first.
    """
    size = len(shape.fields)
    by_tx = {row[size]: row for row in rows}
    ends = {row[size + 1] for row in rows}
    firsts = [row for row in rows if row[size] not in ends]
    if len(firsts) == 1:
        chain = [firsts[0]]
        while (end := chain[-1][size + 1]) is not None and end in by_tx and len(chain) < len(rows):
            chain.append(by_tx[end])
        if len(chain) == len(rows):
            return chain
    return list(rows[::-1])


def newest_in_commit_order(
    shape: Shape, newest: Sequence[Sequence[Any]], count: int
) -> list[Sequence[Any]] | None:
    """The last ``count`` versions in commit order, from the ``count`` newest by id.

    Walks back from the open version along the end pointers; ``None`` when the rows at
    hand do not reach back ``count`` versions (ids and commit order disagree there), so
    that the caller reads the whole history instead.
    """
    if len(newest) < count:
        return in_commit_order(shape, newest)  # the whole history
    size = len(shape.fields)
    by_end = {row[size + 1]: row for row in newest}
    walked: list[Sequence[Any]] = []
    found = by_end.get(None)
    while found is not None and len(walked) < count:
        walked.append(found)
        found = by_end.get(found[size])
    return walked[::-1] if len(walked) == count else None


def transaction_table() -> sa.Table:
    table: sa.Table = versioning_manager.transaction_cls.__table__
    return table


def transaction_columns(
    transaction: sa.Table,
) -> tuple[list[sa.ColumnElement[Any]], sa.FromClause]:
    """id, issued_at, user_id, remote_addr, a user label and the change context (the
    JSON ``context`` column), with the join they need.

    The label comes from the user's table in the same statement, so reading history
    stays one query whatever its length and whoever wrote it.
    """
    user_id = transaction.c.user_id if "user_id" in transaction.c else sa.null()
    remote_addr = transaction.c.remote_addr if "remote_addr" in transaction.c else sa.null()
    context = transaction.c[CONTEXT_COLUMN] if CONTEXT_COLUMN in transaction.c else sa.null()
    joined: sa.FromClause = transaction
    label: sa.ColumnElement[Any] = sa.null()
    user_rel = getattr(versioning_manager.transaction_cls, "user", None)
    if "user_id" in transaction.c and isinstance(
        getattr(user_rel, "property", None), orm.RelationshipProperty
    ):
        assert user_rel is not None
        user_mapper = user_rel.property.mapper
        name = label_attribute(user_mapper.class_)
        if name is not None and len(user_mapper.primary_key) == 1:
            users = user_mapper.local_table.alias("vestige_user")
            key_column = users.c[user_mapper.primary_key[0].name]
            column = user_mapper.attrs[name].columns[0]
            label = users.c[column.name]
            joined = transaction.outerjoin(users, key_column == transaction.c.user_id)
    columns = [transaction.c.id, transaction.c.issued_at, user_id, remote_addr, label, context]
    return columns, joined


def context_criteria(
    transaction: sa.Table, wanted: Mapping[str, Any], dialect: str
) -> list[sa.ColumnElement[bool]]:
    """Conditions on the transaction table for "its context has these values".

    ``user`` and ``remote_addr`` compare their own columns where the table has them;
    every other key compares the JSON ``context`` column: with ``@>`` (containment) on
    PostgreSQL, with the JSON path's typed value elsewhere. ``None`` matches a key that
    is absent or null.

    Raises:
        ConfigError: A value is not a string, number, boolean or ``None``, or the
            transaction table has no ``context`` column to filter on.
    """
    criteria: list[sa.ColumnElement[bool]] = []
    for key, value in wanted.items():
        if value is not None and not isinstance(value, str | int | float | bool):
            raise ConfigError(BAD_CONTEXT_FILTER.format(key=key, value=value))
        if key in ("user", "remote_addr") and _own_column(key) in transaction.c:
            column = transaction.c[_own_column(key)]
            criteria.append(column.is_(None) if value is None else column == value)
            continue
        if CONTEXT_COLUMN not in transaction.c:
            raise ConfigError(NO_CONTEXT_COLUMN.format(key=key))
        stored: Any = transaction.c[CONTEXT_COLUMN]
        if value is None:
            criteria.append(stored[key].as_string().is_(None))
        elif dialect == "postgresql":
            jsonb = sa.type_coerce(stored, postgresql.JSONB)
            criteria.append(jsonb.contains(sa.literal({key: value}, postgresql.JSONB)))
        elif isinstance(value, bool):
            criteria.append(stored[key].as_boolean() == value)
        elif isinstance(value, int):
            criteria.append(stored[key].as_integer() == value)
        elif isinstance(value, float):
            criteria.append(stored[key].as_float() == value)
        else:
            criteria.append(stored[key].as_string() == value)
    return criteria


def _own_column(key: str) -> str:
    return "user_id" if key == "user" else key


def user_labels(session: orm.Session, user_ids: Sequence[Any]) -> dict[Any, str]:
    """The label (username, name or email) of each user id, as :func:`transaction_columns`
    joins it, for transactions read from somewhere else (the archive)."""
    user_rel = getattr(versioning_manager.transaction_cls, "user", None)
    if not user_ids or not isinstance(
        getattr(user_rel, "property", None), orm.RelationshipProperty
    ):
        return {}
    assert user_rel is not None
    user_mapper = user_rel.property.mapper
    name = label_attribute(user_mapper.class_)
    if name is None or len(user_mapper.primary_key) != 1:
        return {}
    users = user_mapper.local_table
    key_column = users.c[user_mapper.primary_key[0].name]
    label = users.c[user_mapper.attrs[name].columns[0].name]
    query = sa.select(key_column, label).where(key_column.in_(sorted(set(user_ids))))
    return {user_id: text for user_id, text in session.execute(query)}


def single_table_filter(model: type[Any]) -> tuple[str, list[Any]] | None:
    """For a single-table inheritance subclass: (discriminator column name, identities)."""
    entry = require_versioned(model)
    discriminator = entry.version_discriminator
    if not entry.single or discriminator is None:
        return None
    return discriminator.name, list(entry.identities)


def _select_versions(shape: Shape) -> sa.Select[Any]:
    """Value columns, then transaction_id, end_transaction_id, operation_type, then the
    transaction's id, issued_at, user_id, remote_addr, user label and context."""
    transaction = transaction_table()
    columns, joined = transaction_columns(transaction)
    return sa.select(
        *shape.columns,
        shape.transaction_id,
        shape.end_transaction_id,
        shape.operation_type,
        *columns,
    ).select_from(shape.selectable.join(joined, transaction.c.id == shape.transaction_id))
