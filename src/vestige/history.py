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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy_continuum import version_class
from sqlalchemy_continuum.utils import version_table

from vestige.errors import ConfigError, HistoryPruned, RecordNotFound
from vestige.versioning import versioning_manager

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
]

BAD_KEY = "bad key {key!r} for {model}: expected {expected}"
DIFFERENT_RECORDS = "cannot diff versions of different records: {a} and {b}"
NO_HISTORY = "no history for {record}; check the model and the key"
NOT_THEN = "{record} did not exist at {when}; pick a transaction from: vestige history {args}"
PRUNED_AS_OF = (
    "the history of {record} before transaction {first} has been pruned; "
    "what it looked like at {when} is no longer known"
)
_INTERNAL_COLUMNS = ("transaction_id", "end_transaction_id", "operation_type")
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
        record: Continuum's version object (``PackageVersion``), for its relations.
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
    record: Any = field(default=None, repr=False, compare=False)


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
    """The versions of one record, oldest first, in one SQL statement.

    Args:
        session: The session to read with.
        model: The versioned mapped class.
        key: The primary key: a value, a tuple for composite keys, or a mapping.
        limit: Only the newest ``limit`` versions (still oldest first); their changes
            are computed against the version before them all the same.

    Returns:
        The versions; empty if the record has no history.
    """
    version_cls = version_class(model)
    tx_cls = versioning_manager.transaction_cls
    query = (
        _with_user(sa.select(version_cls, tx_cls), tx_cls)
        .join(tx_cls, tx_cls.id == version_cls.transaction_id)
        .where(*_key_criteria(version_cls, model, key))
        .order_by(version_cls.transaction_id.desc())
    )
    if limit is not None:
        query = query.limit(limit + 1)
    rows = list(session.execute(query).all())
    rows.reverse()
    versions: list[Version] = []
    previous: Version | None = None
    for index, (record, transaction) in enumerate(rows):
        version = _version(model, record, transaction, previous, first=index == 0)
        versions.append(version)
        previous = version
    if limit is not None and len(versions) > limit:
        versions = versions[len(versions) - limit :]
    return versions


def as_of(session: orm.Session, model: type[Any], key: Any, when: datetime | int) -> Version | None:
    """The record as it was at a moment: a timestamp or a transaction id.

    At a timestamp, the version whose transaction was issued at or before ``when`` and
    whose superseding transaction (if any) was issued after it; at a transaction id,
    the version written at or before that transaction and not yet superseded by it.

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
    version_cls = version_class(model)
    tx_cls = versioning_manager.transaction_cls
    criteria = list(_key_criteria(version_cls, model, key))
    query = _with_user(sa.select(version_cls, tx_cls), tx_cls).join(
        tx_cls, tx_cls.id == version_cls.transaction_id
    )
    if isinstance(when, datetime):
        moment = _naive_utc(when)
        end_tx = orm.aliased(tx_cls)
        query = query.outerjoin(end_tx, end_tx.id == version_cls.end_transaction_id)
        criteria += [
            tx_cls.issued_at <= moment,
            sa.or_(version_cls.end_transaction_id.is_(None), end_tx.issued_at > moment),
        ]
    else:
        criteria += [
            version_cls.transaction_id <= when,
            sa.or_(
                version_cls.end_transaction_id.is_(None),
                version_cls.end_transaction_id > when,
            ),
        ]
    query = query.where(*criteria).order_by(version_cls.transaction_id.desc()).limit(1)
    row = session.execute(query).first()
    if row is None:
        _raise_if_pruned(session, model, key, when)
        return None
    record, transaction = row
    if record.operation_type == 2:
        return None
    return _version(model, record, transaction, None, first=False, with_changes=False)


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
    tx_cls = versioning_manager.transaction_cls
    query = _with_user(sa.select(tx_cls), tx_cls).order_by(tx_cls.id)
    if since is not None:
        query = query.where(tx_cls.issued_at >= _naive_utc(since))
    if until is not None:
        query = query.where(tx_cls.issued_at < _naive_utc(until))
    if user is not None:
        query = query.where(tx_cls.user_id == user)
    if model is not None:
        query = query.where(tx_cls.id.in_(sa.select(version_class(model).transaction_id)))
    if limit is not None:
        query = query.limit(limit)
    transactions = list(session.scalars(query).unique())
    ids = [transaction.id for transaction in transactions]
    touched: dict[int, list[Touched]] = {tx_id: [] for tx_id in ids}
    if ids:
        for name, table, key_names in _versioned_tables():
            keys = [table.c[key_name] for key_name in key_names]
            rows = session.execute(
                sa.select(table.c.transaction_id, table.c.operation_type, *keys)
                .where(table.c.transaction_id.in_(ids))
                .order_by(table.c.transaction_id, *keys)
            )
            for tx_id, operation_type, *key in rows:
                operation = Operation.from_type(operation_type)
                touched[tx_id].append(Touched(name, tuple(key), operation))
    return [
        TransactionChanges(
            transaction_id=transaction.id,
            issued_at=transaction.issued_at,
            user_id=getattr(transaction, "user_id", None),
            user=user_label(transaction),
            remote_addr=getattr(transaction, "remote_addr", None),
            touched=tuple(touched[transaction.id]),
        )
        for transaction in transactions
    ]


def user_label(transaction: Any) -> str:
    """Something human for a transaction's user: a username, name or email, else the id."""
    user_id = getattr(transaction, "user_id", None)
    if user_id is None:
        return ""
    user = transaction.__dict__.get("user")
    for attribute in _USER_LABELS:
        label = getattr(user, attribute, None)
        if isinstance(label, str) and label:
            return label
    return str(user_id)


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


def _versioned_tables() -> list[tuple[str, sa.Table, list[str]]]:
    """Every version table: (model or association table name, table, key column names)."""
    found = []
    for parent in versioning_manager.version_class_map:
        if sa.inspect(parent).class_ is parent:
            table = sa.inspect(version_class(parent)).local_table
            found.append((parent.__name__, table, [col.name for _, col in _key_columns(parent)]))
    for association in versioning_manager.association_tables:
        keys = [col.name for col in association.primary_key] or [col.name for col in association.c]
        found.append((association.name, version_table(association), keys))
    return sorted(found, key=lambda item: item[0])


def _key_columns(model: type[Any]) -> list[tuple[str, sa.Column[Any]]]:
    mapper = sa.inspect(model)
    return [(mapper.get_property_by_column(col).key, col) for col in mapper.primary_key]


def _key_criteria(version_cls: type[Any], model: type[Any], key: Any) -> list[Any]:
    names = [name for name, _ in _key_columns(model)]
    values = normalize_key(model, key)
    return [getattr(version_cls, name) == value for name, value in zip(names, values, strict=True)]


def _with_user(query: sa.Select[Any], tx_cls: type[Any]) -> sa.Select[Any]:
    # Loading the user in the same statement keeps history at one query whatever its length.
    user = getattr(tx_cls, "user", None)
    if isinstance(user, orm.attributes.InstrumentedAttribute) and isinstance(
        user.property, orm.RelationshipProperty
    ):
        return query.options(orm.joinedload(user))
    return query


def _values(model: type[Any], record: Any) -> dict[str, Any]:
    mapper = sa.inspect(type(record))
    return {
        key: getattr(record, key)
        for key, _ in mapper.columns.items()
        if key not in _INTERNAL_COLUMNS
    }


def _changes(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[Change]:
    if old is None:
        return [Change(name, None, value) for name, value in new.items() if value is not None]
    return [
        Change(name, old.get(name), value) for name, value in new.items() if old.get(name) != value
    ]


def _version(
    model: type[Any],
    record: Any,
    transaction: Any,
    previous: Version | None,
    *,
    first: bool,
    with_changes: bool = True,
) -> Version:
    operation = Operation.from_type(record.operation_type)
    values = _values(model, record)
    pruned_before = first and operation is not Operation.INSERT
    found: tuple[Change, ...] = ()
    if with_changes and operation is not Operation.DELETE and not pruned_before:
        before = None if previous is None or operation is Operation.INSERT else previous.values
        found = tuple(_changes(before, values))
    return Version(
        model=model,
        key=tuple(getattr(record, name) for name, _ in _key_columns(model)),
        transaction_id=record.transaction_id,
        end_transaction_id=record.end_transaction_id,
        issued_at=transaction.issued_at,
        user_id=getattr(transaction, "user_id", None),
        user=user_label(transaction),
        remote_addr=getattr(transaction, "remote_addr", None),
        operation=operation,
        values=values,
        changes=found,
        pruned_before=pruned_before,
        record=record,
    )


def _raise_if_pruned(
    session: orm.Session, model: type[Any], key: Any, when: datetime | int
) -> None:
    """Raise if no version answers ``when`` because the ones that would have were pruned."""
    version_cls = version_class(model)
    tx_cls = versioning_manager.transaction_cls
    oldest = session.execute(
        sa.select(version_cls.operation_type, version_cls.transaction_id, tx_cls.issued_at)
        .join(tx_cls, tx_cls.id == version_cls.transaction_id)
        .where(*_key_criteria(version_cls, model, key))
        .order_by(version_cls.transaction_id)
        .limit(1)
    ).first()
    if oldest is None or oldest.operation_type == 0:
        return
    raise HistoryPruned(
        PRUNED_AS_OF.format(
            record=record_label(model, normalize_key(model, key)),
            first=oldest.transaction_id,
            when=describe_when(when),
        )
    )


def _naive_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)
