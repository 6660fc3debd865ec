"""Reading history: a record's versions, the record as of a moment, diffs, and changesets.

Every function takes the application's session and the mapped class, and answers in a
constant number of SQL statements however long the history is::

    from vestige.history import as_of, changes, diff, history

    versions = history(session, Package, 7)           # oldest first, one SELECT
    for version in versions:
        print(version.transaction_id, version.user, version.operation, version.changes)
    then = as_of(session, Package, 7, datetime(2026, 1, 1))   # or a transaction id
    diff(versions[0], versions[-1])                    # any two versions, no SQL
    changes(session, since=datetime(2026, 1, 1), user=3)   # who touched what

Continuum's ``version.index`` is never used: in SQLAlchemy-Continuum 2.0.0 it counts
the versions of every record of the table, not of one record.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy_continuum import version_class
from sqlalchemy_continuum.utils import version_table

from vestige.errors import ConfigError, HistoryPruned, RecordNotFound
from vestige.versioning.setup import versioning_manager

__all__ = [
    "Change",
    "Operation",
    "Touched",
    "TransactionChanges",
    "Version",
    "as_of",
    "at",
    "changes",
    "diff",
    "history",
    "label_attribute",
]

BAD_KEY = "bad key {key!r} for {model}: expected {expected}"
DIFFERENT_RECORDS = "cannot diff versions of different records: {a} and {b}"
NO_HISTORY = "no history for {record}; check the model and the key"
NOT_THEN = "{record} did not exist at {when}; pick a transaction from: vestige history {args}"
PRUNED_AS_OF = (
    "the history of {record} before transaction {first} has been pruned; "
    "what it looked like at {when} is no longer known"
)
_USER_LABELS = ("username", "name", "email")


class Operation(enum.StrEnum):
    """What a version records; Continuum stores it as ``operation_type`` 0, 1, 2."""

    INSERT = "insert"
    UPDATE = "update"
    DELETE = "delete"

    @classmethod
    def from_type(cls, operation_type: int) -> Operation:
        return _OPERATIONS[operation_type]


_OPERATIONS = {0: Operation.INSERT, 1: Operation.UPDATE, 2: Operation.DELETE}


@dataclass(frozen=True)
class Change:
    """One field of a record that differs between two versions."""

    field: str
    old: Any
    new: Any


@dataclass(frozen=True)
class Version:
    """One version of one record, with who wrote it and what it changed.

    Attributes:
        model: The mapped class (``Package``).
        key: The record's primary key values, in primary key order.
        transaction_id: The transaction that wrote this version.
        end_transaction_id: The transaction that superseded it (``None``: still current).
        issued_at: When that transaction ran (naive UTC, as Continuum stores it).
        user_id: ``transaction.user_id`` (``None`` when nobody was recorded).
        user: A label for the user: its ``username``, ``name`` or ``email``, else its id.
        remote_addr: ``transaction.remote_addr``, if recorded.
        operation: Insert, update or delete.
        values: The record's columns as they were after this transaction.
        changes: The fields that differ from the previous version (for an insert,
            including one that undoes a delete, every field that is not ``None``; for a
            delete, none).
        pruned_before: The versions before this one were pruned, so ``changes`` is
            empty because the previous state is unknown.
    """

    model: type[Any]
    key: tuple[Any, ...]
    transaction_id: int
    end_transaction_id: int | None
    issued_at: datetime
    user_id: Any
    user: str
    remote_addr: str | None
    operation: Operation
    values: Mapping[str, Any]
    changes: tuple[Change, ...] = ()
    pruned_before: bool = False


@dataclass(frozen=True)
class Touched:
    """A record a transaction wrote a version of."""

    model: str
    key: tuple[Any, ...]
    operation: Operation


@dataclass(frozen=True)
class TransactionChanges:
    """A transaction, who ran it, and every versioned record it touched."""

    transaction_id: int
    issued_at: datetime
    user_id: Any
    user: str
    remote_addr: str | None
    touched: tuple[Touched, ...]


def history(
    session: orm.Session, model: type[Any], key: Any, *, limit: int | None = None
) -> list[Version]:
    """The versions of one record, oldest first in commit order, in one SQL statement.

    Commit order is the chain the ``end_transaction_id`` pointers draw. It is the order
    of ``transaction_id`` unless two writers committed out of the order in which their
    transactions were numbered (Continuum numbers a transaction at its first flush).

    Args:
        session: The session to read with.
        model: The versioned mapped class.
        key: The primary key: a value, a tuple for composite keys, or a mapping.
        limit: Only the newest ``limit`` versions (still oldest first); their changes
            are computed against the version before them all the same.

    Returns:
        The versions; empty if the record has no history.
    """
    shape = _shape(model)
    params = shape.key_params(key)
    rows: list[Sequence[Any]] | None = None
    if limit is not None:
        params["limit"] = limit + 1
        newest = list(session.execute(shape.statement("history_limit"), params).all())
        rows = _newest_in_commit_order(shape, newest, limit + 1)
    if rows is None:
        rows = _in_commit_order(shape, list(session.execute(shape.statement("history"), params)))
    versions: list[Version] = []
    previous: Version | None = None
    for index, row in enumerate(rows):
        version = _version(shape, row, previous, first=index == 0)
        versions.append(version)
        previous = version
    if limit is not None and len(versions) > limit:
        versions = versions[len(versions) - limit :]
    return versions


def as_of(session: orm.Session, model: type[Any], key: Any, when: datetime | int) -> Version | None:
    """The record as it was at a moment: a timestamp or a transaction id.

    At a transaction id, the version that transaction wrote, if it wrote one; otherwise
    the newest, in commit order, of the versions written by transactions numbered up to
    it. At a timestamp, the newest in commit order of the versions whose transaction was
    issued at or before ``when``. (Transactions are numbered and timed at their first
    flush, not at commit: where two writers committed out of that order, this is the
    nearest the stored history can tell.)

    Args:
        session: The session to read with.
        model: The versioned mapped class.
        key: The primary key (a value, a tuple, or a mapping).
        when: A ``datetime`` (naive means UTC) or a transaction id.

    Returns:
        The version in force, with ``changes`` empty; ``None`` if the record did not
        exist then (not yet inserted, or deleted).

    Raises:
        HistoryPruned: The versions that would answer were pruned.
    """
    shape = _shape(model)
    rows = _in_commit_order(
        shape, list(session.execute(shape.statement("history"), shape.key_params(key)))
    )
    size = len(shape.fields)
    found: Sequence[Any] | None = None
    if isinstance(when, datetime):
        moment = _naive_utc(when)
        found = next((row for row in reversed(rows) if row[size + 4] <= moment), None)
    else:
        found = next((row for row in rows if row[size] == when), None) or next(
            (row for row in reversed(rows) if row[size] <= when), None
        )
    if found is None:
        if rows and Operation.from_type(rows[0][size + 2]) is not Operation.INSERT:
            raise HistoryPruned(
                PRUNED_AS_OF.format(
                    record=record_label(model, normalize_key(model, key)),
                    first=rows[0][size],
                    when=describe_when(when),
                )
            )
        return None
    version = _version(shape, found, None, first=False, with_changes=False)
    return None if version.operation is Operation.DELETE else version


def at(session: orm.Session, model: type[Any], key: Any, when: datetime | int) -> Version:
    """Like :func:`as_of`, but a record that did not exist then is an error.

    Raises:
        RecordNotFound: The record has no history at all, or did not exist at ``when``.
        HistoryPruned: The versions that would answer were pruned.
    """
    found = as_of(session, model, key, when)
    if found is not None:
        return found
    key = normalize_key(model, key)
    record = record_label(model, key)
    if not history(session, model, key, limit=1):
        raise RecordNotFound(NO_HISTORY.format(record=record))
    args = f"{model.__name__} {','.join(str(part) for part in key)}"
    raise RecordNotFound(NOT_THEN.format(record=record, when=describe_when(when), args=args))


def describe_when(when: datetime | int) -> str:
    """``transaction 12`` or ``2026-01-31 12:00:00``, as messages show moments."""
    return f"transaction {when}" if isinstance(when, int) else when.isoformat(sep=" ")


def diff(older: Version, newer: Version) -> list[Change]:
    """The fields that differ between two versions of the same record, in column order.

    Raises:
        ConfigError: The versions belong to different records.
    """
    if (older.model, older.key) != (newer.model, newer.key):
        raise ConfigError(DIFFERENT_RECORDS.format(a=_label(older), b=_label(newer)))
    return _changes(older.values, newer.values)


def changes(
    session: orm.Session,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    user: Any = None,
    model: type[Any] | None = None,
    limit: int | None = 100,
) -> list[TransactionChanges]:
    """Transactions, oldest first, with every versioned record each one touched.

    One statement for the transactions and one per versioned model, however many
    versions there are.

    Args:
        session: The session to read with.
        since: Only transactions issued at or after this moment.
        until: Only transactions issued before this moment.
        user: Only transactions by this user id.
        model: Only transactions that wrote a version of this mapped class; their
            ``touched`` still lists every record.
        limit: At most this many transactions (the oldest that match); ``None``: all.
    """
    transaction = _transaction_table()
    columns, joined = _transaction_columns(transaction)
    query = sa.select(*columns).select_from(joined).order_by(transaction.c.id)
    if since is not None:
        query = query.where(transaction.c.issued_at >= _naive_utc(since))
    if until is not None:
        query = query.where(transaction.c.issued_at < _naive_utc(until))
    if user is not None:
        query = query.where(transaction.c.user_id == user)
    if model is not None:
        shape = _shape(model)
        touched_model = (
            sa.select(shape.transaction_id).select_from(shape.selectable).where(*shape.criteria)
        )
        query = query.where(transaction.c.id.in_(touched_model))
    if limit is not None:
        query = query.limit(limit)
    transactions = session.execute(query).all()
    ids = [row[0] for row in transactions]
    touched: dict[int, list[Touched]] = {tx_id: [] for tx_id in ids}
    if ids:
        for table, key_names, discriminator, names in _versioned_tables():
            keys = [table.c[key_name] for key_name in key_names]
            kind = sa.null() if discriminator is None else discriminator
            rows = session.execute(
                sa.select(table.c.transaction_id, table.c.operation_type, kind, *keys)
                .where(table.c.transaction_id.in_(ids))
                .order_by(table.c.transaction_id, *keys)
            )
            for tx_id, operation_type, identity, *key in rows:
                operation = Operation.from_type(operation_type)
                name = names.get(identity, names[None])
                touched[tx_id].append(Touched(name, tuple(key), operation))
    return [
        TransactionChanges(
            transaction_id=tx_id,
            issued_at=issued_at,
            user_id=user_id,
            user=_user_text(user_id, label),
            remote_addr=remote_addr,
            touched=tuple(touched[tx_id]),
        )
        for tx_id, issued_at, user_id, remote_addr, label in transactions
    ]


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


def record_label(model: type[Any], key: Sequence[Any]) -> str:
    """``Package 7`` (``Model a,b`` for composite keys), as messages show records."""
    return f"{model.__name__} {','.join(str(part) for part in key)}"


def _label(version: Version) -> str:
    return record_label(version.model, version.key)


def _versioned_tables() -> list[tuple[sa.Table, list[str], sa.Column[Any] | None, dict[Any, str]]]:
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
class _Shape:
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


def _build_statement(shape: _Shape, kind: str) -> sa.Select[Any]:
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


_SHAPES: dict[type[Any], _Shape] = {}


def _shape(model: type[Any]) -> _Shape:
    if model not in _SHAPES:
        _SHAPES[model] = _build_shape(model)
    return _SHAPES[model]


def _build_shape(model: type[Any]) -> _Shape:
    mapper = sa.inspect(version_class(model))
    internal = _internal_names()
    pairs = [
        (prop.key, prop.columns[0])
        for prop in mapper.column_attrs
        if prop.key not in internal and isinstance(prop.columns[0], sa.Column)
    ]
    root: sa.Table = mapper.base_mapper.local_table
    tx_name, end_name, op_name = internal
    return _Shape(
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


def _in_commit_order(shape: _Shape, rows: Sequence[Sequence[Any]]) -> list[Sequence[Any]]:
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


def _newest_in_commit_order(
    shape: _Shape, newest: Sequence[Sequence[Any]], count: int
) -> list[Sequence[Any]] | None:
    """The last ``count`` versions in commit order, from the ``count`` newest by id.

    Walks back from the open version along the end pointers; ``None`` when the rows at
    hand do not reach back ``count`` versions (ids and commit order disagree there), so
    that the caller reads the whole history instead.
    """
    if len(newest) < count:
        return _in_commit_order(shape, newest)  # the whole history
    size = len(shape.fields)
    by_end = {row[size + 1]: row for row in newest}
    walked: list[Sequence[Any]] = []
    found = by_end.get(None)
    while found is not None and len(walked) < count:
        walked.append(found)
        found = by_end.get(found[size])
    return walked[::-1] if len(walked) == count else None


def _transaction_table() -> sa.Table:
    table: sa.Table = versioning_manager.transaction_cls.__table__
    return table


def _transaction_columns(
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


def _select_versions(shape: _Shape) -> sa.Select[Any]:
    """Value columns, then transaction_id, end_transaction_id, operation_type, then the
    transaction's id, issued_at, user_id, remote_addr and user label."""
    transaction = _transaction_table()
    columns, joined = _transaction_columns(transaction)
    return sa.select(
        *shape.columns,
        shape.transaction_id,
        shape.end_transaction_id,
        shape.operation_type,
        *columns,
    ).select_from(shape.selectable.join(joined, transaction.c.id == shape.transaction_id))


def _user_text(user_id: Any, label: Any) -> str:
    if user_id is None:
        return ""
    return label if isinstance(label, str) and label else str(user_id)


def _changes(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[Change]:
    if old is None:
        return [Change(name, None, value) for name, value in new.items() if value is not None]
    return [
        Change(name, old.get(name), value) for name, value in new.items() if old.get(name) != value
    ]


def _version(
    shape: _Shape,
    row: Sequence[Any],
    previous: Version | None,
    *,
    first: bool,
    with_changes: bool = True,
) -> Version:
    size = len(shape.fields)
    values = dict(zip(shape.fields, row[:size], strict=True))
    tx_id, end_tx_id, operation_type, _, issued_at, user_id, remote_addr, label = row[size:]
    operation = Operation.from_type(operation_type)
    pruned_before = first and operation is not Operation.INSERT
    found: tuple[Change, ...] = ()
    if with_changes and operation is not Operation.DELETE and not pruned_before:
        before = None if previous is None or operation is Operation.INSERT else previous.values
        found = tuple(_changes(before, values))
    return Version(
        model=shape.model,
        key=tuple(values[name] for name in shape.key_fields),
        transaction_id=tx_id,
        end_transaction_id=end_tx_id,
        issued_at=issued_at,
        user_id=user_id,
        user=_user_text(user_id, label),
        remote_addr=remote_addr,
        operation=operation,
        values=values,
        changes=found,
        pruned_before=pruned_before,
    )


def _naive_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)
