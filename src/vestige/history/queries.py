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
from sqlalchemy_continuum import version_class
from sqlalchemy_continuum.utils import version_table

from vestige.errors import ConfigError
from vestige.versioning.setup import versioning_manager

__all__ = [
    "BAD_KEY",
    "Shape",
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
    found = []
    for parent in versioning_manager.version_class_map:
        mapper = sa.inspect(parent)
        if mapper.class_ is not parent or mapper.inherits is not None:
            continue
        table = sa.inspect(version_class(parent)).local_table
        names: dict[Any, str] = {None: parent.__name__}
        names.update(
            (identity, sub.class_.__name__) for identity, sub in mapper.polymorphic_map.items()
        )
        keys = [col.name for _, col in _key_columns(parent)]
        found.append((table, keys, _discriminator(parent, table), names))
    for association in versioning_manager.association_tables:
        keys = [col.name for col in association.primary_key] or [col.name for col in association.c]
        found.append((version_table(association), keys, None, {None: association.name}))
    return sorted(found, key=lambda item: item[3][None])


def _key_columns(model: type[Any]) -> list[tuple[str, sa.Column[Any]]]:
    mapper = sa.inspect(model)
    return [(mapper.get_property_by_column(col).key, col) for col in mapper.primary_key]


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
    mapper = sa.inspect(version_class(model))
    internal = _internal_names()
    pairs = [
        (prop.key, prop.columns[0])
        for prop in mapper.column_attrs
        if prop.key not in internal and isinstance(prop.columns[0], sa.Column)
    ]
    root: sa.Table = mapper.base_mapper.local_table
    tx_name, end_name, op_name = internal
    return Shape(
        model=model,
        selectable=mapper.persist_selectable,
        criteria=tuple(_single_table_criteria(model, root)),
        fields=tuple(key for key, _ in pairs),
        columns=tuple(column for _, column in pairs),
        key_fields=tuple(name for name, _ in _key_columns(model)),
        transaction_id=root.c[tx_name],
        end_transaction_id=root.c[end_name],
        operation_type=root.c[op_name],
    )


def _internal_names() -> tuple[str, str, str]:
    """The names of the transaction, end transaction and operation type columns."""
    options = versioning_manager.options
    return (
        options["transaction_column_name"],
        options["end_transaction_column_name"],
        options["operation_type_column_name"],
    )


def _single_table_criteria(model: type[Any], root: sa.Table) -> list[sa.ColumnElement[bool]]:
    """For a single-table inheritance subclass: its rows of the shared version table."""
    mapper = sa.inspect(model)
    discriminator = _discriminator(model, root)
    if not mapper.single or mapper.inherits is None or discriminator is None:
        return []
    identities = [m.polymorphic_identity for m in mapper.self_and_descendants]
    return [discriminator.in_(identities)]


def _discriminator(model: type[Any], version_table: sa.Table) -> sa.Column[Any] | None:
    """The version table's copy of the hierarchy's ``polymorphic_on`` column, if any."""
    polymorphic_on = sa.inspect(model).polymorphic_on
    if not isinstance(polymorphic_on, sa.Column):
        return None
    return version_table.c.get(polymorphic_on.name)


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
    """id, issued_at, user_id, remote_addr and a user label, with the join they need.

    The label comes from the user's table in the same statement, so reading history
    stays one query whatever its length and whoever wrote it.
    """
    user_id = transaction.c.user_id if "user_id" in transaction.c else sa.null()
    remote_addr = transaction.c.remote_addr if "remote_addr" in transaction.c else sa.null()
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
    return [transaction.c.id, transaction.c.issued_at, user_id, remote_addr, label], joined


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
    mapper = sa.inspect(model)
    root: sa.Table = sa.inspect(version_class(model)).base_mapper.local_table
    discriminator = _discriminator(model, root)
    if not mapper.single or mapper.inherits is None or discriminator is None:
        return None
    return discriminator.name, [m.polymorphic_identity for m in mapper.self_and_descendants]


def _select_versions(shape: Shape) -> sa.Select[Any]:
    """Value columns, then transaction_id, end_transaction_id, operation_type, then the
    transaction's id, issued_at, user_id, remote_addr and user label."""
    transaction = transaction_table()
    columns, joined = transaction_columns(transaction)
    return sa.select(
        *shape.columns,
        shape.transaction_id,
        shape.end_transaction_id,
        shape.operation_type,
        *columns,
    ).select_from(shape.selectable.join(joined, transaction.c.id == shape.transaction_id))
