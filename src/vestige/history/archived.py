"""History across the database and the archive: the archived versions of a record, read
through DuckDB, in the same row layout as the database's, so that one chain is walked.

A session reads across the archive when one is passed to :func:`~vestige.history.history`
(``archive=URL``) or set once with :func:`use_archive`. The versions a pruner archived
come back with their transaction (from the database, or archived with them) and its
user's label, so a record's history after an archiving prune equals its history before.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import sqlalchemy as sa
from sqlalchemy import orm

from vestige.errors import ConfigError
from vestige.history.queries import (
    Shape,
    single_table_filter,
    transaction_columns,
    transaction_table,
    user_labels,
)
from vestige.versioning.change_context import CONTEXT_COLUMN

if TYPE_CHECKING:
    from vestige.archive import ArchiveReader

__all__ = ["ARCHIVE_INFO_KEY", "Archive", "archive_for", "use_archive", "with_archived"]

ARCHIVE_INFO_KEY = "vestige.archive"
NEEDS_ARCHIVE_EXTRA = (
    "reading the archive needs pyarrow, fsspec and duckdb ({missing} is missing): "
    "pip install 'vestige[archive]'"
)

Archive: TypeAlias = "str | ArchiveReader"


def use_archive(session: orm.Session, archive: Archive | None) -> ArchiveReader | None:
    """Make every history read of ``session`` span the archive at ``archive`` too.

    Args:
        session: The session history is read with.
        archive: A directory or fsspec URL (or an open reader); ``None`` stops it.

    Returns:
        The reader now in use.

    Raises:
        ArchiveError: The archive or its manifest cannot be read.
    """
    reader = _reader(session, archive) if archive is not None else None
    if reader is None:
        session.info.pop(ARCHIVE_INFO_KEY, None)
    else:
        session.info[ARCHIVE_INFO_KEY] = reader
    return reader


def archive_for(session: orm.Session, archive: Archive | None) -> ArchiveReader | None:
    """The reader for ``archive``, else the one :func:`use_archive` set on ``session``."""
    if archive is not None:
        return _reader(session, archive)
    found: ArchiveReader | None = session.info.get(ARCHIVE_INFO_KEY)
    return found


def _reader(session: orm.Session, archive: Archive) -> ArchiveReader:
    if not isinstance(archive, str):
        return archive
    try:
        from vestige.archive import ArchiveReader
    except ImportError as exc:
        raise ConfigError(NEEDS_ARCHIVE_EXTRA.format(missing=exc.name)) from None
    naive = session.get_bind().dialect.name == "sqlite"  # SQLite gives aware times back naive
    return ArchiveReader(archive, naive_times=naive)


def with_archived(
    session: orm.Session,
    shape: Shape,
    key: Sequence[Any],
    rows: Sequence[Sequence[Any]],
    reader: ArchiveReader,
) -> list[Sequence[Any]]:
    """``rows`` (the database's, in the layout of ``shape``'s history statement) and the
    record's archived versions, newest transaction id first; the database's win."""
    archived = _archived_versions(shape, key, reader)
    size = len(shape.fields)
    have = {row[size] for row in rows}
    extra = {tx: values for tx, values in archived.items() if tx not in have}
    if not extra:
        return list(rows)
    details = _transactions(session, set(extra), reader)
    merged = list(rows)
    for tx, values in extra.items():
        merged.append((*values, *details.get(tx, (tx, None, None, None, None))))
    merged.sort(key=lambda row: row[size], reverse=True)
    return merged


def _archived_versions(
    shape: Shape, key: Sequence[Any], reader: ArchiveReader
) -> dict[Any, tuple[Any, ...]]:
    """Transaction id -> the value columns, transaction, end and operation of each
    archived version of the record (every level of a joined hierarchy present)."""
    root = shape.transaction_id.table
    assert isinstance(root, sa.Table)
    tx_name = shape.transaction_id.name
    tables = [root, *(t for t in _tables(shape) if t is not root)]
    by_table: dict[str, dict[Any, dict[str, Any]]] = {}
    for table in tables:
        key_names = [column.name for column in table.primary_key.columns if column.name != tx_name]
        where = dict(zip(key_names, key, strict=True))
        by_table[table.name] = {row[tx_name]: row for row in reader.rows(table, where)}
    only = single_table_filter(shape.model)
    found: dict[Any, tuple[Any, ...]] = {}
    for tx, row in by_table[root.name].items():
        if only is not None and row.get(only[0]) not in only[1]:
            continue
        levels = [by_table[table.name].get(tx) for table in tables]
        if any(level is None for level in levels):
            continue
        values = [by_table[_table_name(column)][tx][column.name] for column in shape.columns]
        found[tx] = (
            *values,
            tx,
            row[shape.end_transaction_id.name],
            row[shape.operation_type.name],
        )
    return found


def _tables(shape: Shape) -> list[sa.Table]:
    seen: dict[str, sa.Table] = {}
    for column in shape.columns:
        table = column.table
        if isinstance(table, sa.Table):
            seen.setdefault(table.name, table)
    return list(seen.values())


def _table_name(column: sa.Column[Any]) -> str:
    return str(column.table.name)


def _transactions(
    session: orm.Session, ids: set[Any], reader: ArchiveReader
) -> dict[Any, tuple[Any, ...]]:
    """id -> (id, issued_at, user_id, remote_addr, user label, context), from the
    database or, for the transactions pruned with the versions, from the archive."""
    transaction = transaction_table()
    columns, joined = transaction_columns(transaction)
    query = sa.select(*columns).select_from(joined).where(transaction.c.id.in_(sorted(ids)))
    found: dict[Any, tuple[Any, ...]] = {row[0]: tuple(row) for row in session.execute(query)}
    missing = ids - set(found)
    if missing:
        archived = reader.rows(transaction, {"id": sorted(missing)})
        labels = user_labels(
            session, [row.get("user_id") for row in archived if row.get("user_id") is not None]
        )
        for row in archived:
            user_id = row.get("user_id")
            found[row["id"]] = (
                row["id"],
                row["issued_at"],
                user_id,
                row.get("remote_addr"),
                labels.get(user_id),
                _context(row.get(CONTEXT_COLUMN)),
            )
    return found


def _context(stored: Any) -> Any:
    """The archived change context as the database gives it: a mapping (or ``None``)."""
    return json.loads(stored) if isinstance(stored, str) else stored
