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

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import orm

from vestige.errors import ConfigError, HistoryPruned, RecordNotFound
from vestige.history.archived import Archive, archive_for, with_archived
from vestige.history.queries import (
    Shape,
    context_criteria,
    in_commit_order,
    newest_in_commit_order,
    normalize_key,
    shape_of,
    transaction_columns,
    transaction_table,
    versioned_tables,
)
from vestige.history.versions import (
    Change,
    Operation,
    Touched,
    TransactionChanges,
    Version,
    changes_dict,
)

if TYPE_CHECKING:
    from vestige.archive import ArchiveReader

__all__ = [
    "Change",
    "Operation",
    "Touched",
    "TransactionChanges",
    "Version",
    "as_of",
    "at",
    "changes",
    "changes_dict",
    "diff",
    "history",
]

DIFFERENT_RECORDS = "cannot diff versions of different records: {a} and {b}"
NO_HISTORY = "no history for {record}; check the model and the key"
NOT_THEN = "{record} did not exist at {when}; pick a transaction from: vestige history {args}"
PRUNED_AS_OF = (
    "the history of {record} before transaction {first} has been pruned; "
    "what it looked like at {when} is no longer known"
)


def history(
    session: orm.Session,
    model: type[Any],
    key: Any,
    *,
    limit: int | None = None,
    archive: Archive | None = None,
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
        archive: Read the versions a pruner archived there too (a directory, an fsspec
            URL or an :class:`~vestige.archive.ArchiveReader`); default: the archive
            :func:`~vestige.history.use_archive` set on the session, if any.

    Returns:
        The versions; empty if the record has no history.
    """
    shape = shape_of(model)
    params = shape.key_params(key)
    rows: list[Sequence[Any]] | None = None
    reader = archive_for(session, archive)
    if reader is not None:
        rows = in_commit_order(shape, _rows(session, shape, key, reader))
    elif limit is not None:
        params["limit"] = limit + 1
        newest = list(session.execute(shape.statement("history_limit"), params).all())
        rows = newest_in_commit_order(shape, newest, limit + 1)
    if rows is None:
        rows = in_commit_order(shape, list(session.execute(shape.statement("history"), params)))
    versions: list[Version] = []
    previous: Version | None = None
    for index, row in enumerate(rows):
        version = _version(shape, row, previous, first=index == 0)
        versions.append(version)
        previous = version
    if limit is not None and len(versions) > limit:
        versions = versions[len(versions) - limit :]
    return versions


def as_of(
    session: orm.Session,
    model: type[Any],
    key: Any,
    when: datetime | int,
    *,
    archive: Archive | None = None,
) -> Version | None:
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
        archive: Read the archived versions too (see :func:`history`).

    Returns:
        The version in force, with ``changes`` empty; ``None`` if the record did not
        exist then (not yet inserted, or deleted).

    Raises:
        HistoryPruned: The versions that would answer were pruned (and are not archived).
    """
    shape = shape_of(model)
    rows = in_commit_order(shape, _rows(session, shape, key, archive_for(session, archive)))
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


def at(
    session: orm.Session,
    model: type[Any],
    key: Any,
    when: datetime | int,
    *,
    archive: Archive | None = None,
) -> Version:
    """Like :func:`as_of`, but a record that did not exist then is an error.

    Raises:
        RecordNotFound: The record has no history at all, or did not exist at ``when``.
        HistoryPruned: The versions that would answer were pruned.
    """
    found = as_of(session, model, key, when, archive=archive)
    if found is not None:
        return found
    key = normalize_key(model, key)
    record = record_label(model, key)
    if not history(session, model, key, limit=1, archive=archive):
        raise RecordNotFound(NO_HISTORY.format(record=record))
    args = f"{model.__name__} {','.join(str(part) for part in key)}"
    raise RecordNotFound(NOT_THEN.format(record=record, when=describe_when(when), args=args))


def _rows(
    session: orm.Session, shape: Shape, key: Any, reader: ArchiveReader | None
) -> list[Sequence[Any]]:
    """The record's version rows, newest id first, from the database and the archive."""
    rows: list[Sequence[Any]] = list(
        session.execute(shape.statement("history"), shape.key_params(key))
    )
    if reader is None:
        return rows
    return with_archived(session, shape, normalize_key(shape.model, key), rows, reader)


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
    context: Mapping[str, Any] | None = None,
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
        context: Only transactions whose stored context has each of these values
            (``{"request_id": "f3a1"}``, ``{"reason": "import", "tenant": "acme"}``);
            values are strings, numbers, booleans or ``None``. ``user`` and
            ``remote_addr`` filter on their columns when the table has them.
        limit: At most this many transactions (the oldest that match); ``None``: all.
    """
    transaction, query = _transactions_select(since, until, user)
    query = query.order_by(transaction.c.id)
    if model is not None:
        shape = shape_of(model)
        touched_model = (
            sa.select(shape.transaction_id).select_from(shape.selectable).where(*shape.criteria)
        )
        query = query.where(transaction.c.id.in_(touched_model))
    if context:
        dialect = session.get_bind().dialect.name
        query = query.where(*context_criteria(transaction, context, dialect))
    if limit is not None:
        query = query.limit(limit)
    transactions = session.execute(query).all()
    ids = [row[0] for row in transactions]
    touched: dict[int, list[Touched]] = {tx_id: [] for tx_id in ids}
    if ids:
        for table, key_names, discriminator, names in versioned_tables():
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
    return [_transaction_changes(row, touched[row[0]]) for row in transactions]


def _transactions_select(
    since: datetime | None, until: datetime | None, user: Any
) -> tuple[sa.Table, sa.Select[Any]]:
    """The ``transaction`` table and the select of its :func:`transaction_columns`, with
    the period and user filters that :func:`changes` and ``transactions_page`` share."""
    transaction = transaction_table()
    columns, joined = transaction_columns(transaction)
    query = sa.select(*columns).select_from(joined)
    if since is not None:
        query = query.where(transaction.c.issued_at >= _naive_utc(since))
    if until is not None:
        query = query.where(transaction.c.issued_at < _naive_utc(until))
    if user is not None:
        query = query.where(transaction.c.user_id == user)
    return transaction, query


def _transaction_changes(row: Sequence[Any], touched: Sequence[Touched]) -> TransactionChanges:
    """A row of :func:`transaction_columns` and the records it touched, as data."""
    tx_id, issued_at, user_id, remote_addr, label, stored = row
    return TransactionChanges(
        transaction_id=tx_id,
        issued_at=issued_at,
        user_id=user_id,
        user=_user_text(user_id, label),
        remote_addr=remote_addr,
        touched=tuple(touched),
        context=stored or {},
    )


def record_label(model: type[Any], key: Sequence[Any]) -> str:
    """``Package 7`` (``Model a,b`` for composite keys), as messages show records."""
    return f"{model.__name__} {','.join(str(part) for part in key)}"


def _label(version: Version) -> str:
    return record_label(version.model, version.key)


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
    shape: Shape,
    row: Sequence[Any],
    previous: Version | None,
    *,
    first: bool,
    with_changes: bool = True,
) -> Version:
    size = len(shape.fields)
    values = dict(zip(shape.fields, row[:size], strict=True))
    tx_id, end_tx_id, operation_type, _, issued_at, user_id, remote_addr, label, stored = row[size:]
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
        context=stored or {},
    )


def _naive_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)
