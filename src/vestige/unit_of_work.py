"""A unit of work that closes previous versions set-based.

With the ``validity`` strategy every new version closes the record's previous one
(sets its ``end_transaction_id``). Stock Continuum does that with one autoflushing
SELECT per changed row, which also breaks SQLAlchemy's batched INSERTs of the version
rows. :class:`SetBasedUnitOfWork` lets the version rows go in as one batch and then
closes the previous versions with one UPDATE per version table per flush (per parent
table too in joined inheritance; a few more only when a flush touches more records
than the database accepts bind parameters in one statement).

On PostgreSQL the UPDATE locks the rows it closes in primary-key order first (an
ordered ``SELECT ... FOR UPDATE`` in its ``FROM``), so concurrent flushes over
overlapping records queue instead of deadlocking (Continuum went per-row after a
set-based UPDATE deadlocked on MySQL, its issue #172). Dialects other than PostgreSQL
and SQLite keep Continuum's per-row close.

It is the default of :func:`vestige.versioning.make_versioned`; to go back to stock::

    import sqlalchemy_continuum
    make_versioned(user_cls="User", unit_of_work_cls=sqlalchemy_continuum.UnitOfWork)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy_continuum import UnitOfWork
from sqlalchemy_continuum._compat import get_primary_keys
from sqlalchemy_continuum.utils import end_tx_column_name, tx_column_name

__all__ = ["SET_BASED_DIALECTS", "SetBasedUnitOfWork"]

SET_BASED_DIALECTS = frozenset({"postgresql", "sqlite"})
"""Dialects on which the close is set-based; others keep Continuum's per-row close."""

# SQLite before 3.32 accepts at most 999 bind parameters per statement.
_SQLITE_MAX_PARAMS = 32766 if sqlite3.sqlite_version_info >= (3, 32) else 999
_MAX_PARAMS = 30000


class CloseTarget:
    """One version table to close previous versions in, and the records to close."""

    __slots__ = ("end_column", "keys", "pk_attributes", "pk_columns", "table", "tx_column")

    def __init__(self, version_cls: type, tx: str, end_tx: str) -> None:
        table: sa.Table = version_cls.__table__  # type: ignore[attr-defined]
        primary_key = {
            key: column for key, column in get_primary_keys(version_cls).items() if key != tx
        }
        self.table = table
        self.pk_attributes = list(primary_key)
        self.pk_columns = [
            table.c[column.name] if column.name in table.c else table.c[key]
            for key, column in primary_key.items()
        ]
        self.tx_column = table.c[tx]
        self.end_column = table.c[end_tx]
        self.keys: set[tuple[Any, ...]] = set()


class SetBasedUnitOfWork(UnitOfWork):  # type: ignore[misc]
    """Continuum's unit of work, closing previous versions with one UPDATE per table.

    Everything else (transactions, version objects, plugins, association tables) is
    Continuum's. Within one database transaction a record flushed several times keeps
    one version (Continuum reuses it) and its previous version is closed once, by this
    transaction: never with ``end_transaction_id == transaction_id``.
    """

    def reset(self, session: orm.Session | None = None) -> None:
        super().reset(session)
        self._close_targets: dict[sa.Table, CloseTarget] = {}

    def update_version_validity(self, parent: Any, version_obj: Any) -> None:
        """Note the record whose previous version this flush must close.

        Called by Continuum for every new version under the ``validity`` strategy;
        the close itself runs once per flush in :meth:`create_version_objects`.
        """
        if self._dialect_name() not in SET_BASED_DIALECTS:
            super().update_version_validity(parent, version_obj)
            return
        tx_name = tx_column_name(version_obj)
        end_tx_name = end_tx_column_name(version_obj)
        for class_ in version_obj.__class__.__mro__:
            if class_ not in self.manager.parent_class_map:
                continue
            target = self._close_targets.get(class_.__table__)
            if target is None:
                target = CloseTarget(class_, tx_name, end_tx_name)
                self._close_targets[target.table] = target
            target.keys.add(tuple(getattr(version_obj, key) for key in target.pk_attributes))

    def create_version_objects(self, session: orm.Session) -> None:
        """Write this flush's versions in one batch, then close their predecessors."""
        super().create_version_objects(session)
        if not self._close_targets:
            return
        connection = self.version_session.connection()
        tx_id = self.current_transaction.id
        targets, self._close_targets = self._close_targets, {}
        for target in sorted(targets.values(), key=lambda t: t.table.fullname):
            for statement in close_statements(target, tx_id, connection.dialect.name):
                connection.execute(statement)

    def _dialect_name(self) -> str:
        bind = self.version_session.get_bind()
        return str(bind.dialect.name)


def close_statements(target: CloseTarget, tx_id: int, dialect: str) -> Iterator[sa.Update]:
    """The UPDATEs closing the open versions of ``target.keys`` written before ``tx_id``.

    "Before" means committed before, not a smaller id: Continuum numbers a transaction
    at its first flush, so a concurrent writer with a larger id can commit a version of
    the same record first. This transaction holds the record's row lock when it gets
    here, so every other open version is closed by it and the record keeps exactly one
    open version (H1); stock closes only the largest smaller id and leaves two open.
    """
    for keys in key_chunks(target.keys, len(target.pk_columns), dialect):
        yield _close_statement(target, keys, tx_id, dialect)


def key_chunks(
    keys: Iterable[tuple[Any, ...]], width: int, dialect: str
) -> Iterator[list[tuple[Any, ...]]]:
    """Primary keys in sorted order, in chunks that fit one statement's bind parameters."""
    limit = _SQLITE_MAX_PARAMS if dialect == "sqlite" else _MAX_PARAMS
    size = max(1, (limit - 8) // max(width, 1))
    ordered = sorted(keys, key=_sort_key)
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


def match_keys(columns: Sequence[sa.ColumnElement[Any]], keys: Sequence[tuple[Any, ...]]) -> Any:
    """``(columns) IN (keys)``, as a plain IN for a one-column key."""
    if len(columns) == 1:
        return columns[0].in_([key[0] for key in keys])
    return sa.tuple_(*columns).in_(keys)


def _close_statement(
    target: CloseTarget, keys: Sequence[tuple[Any, ...]], tx_id: int, dialect: str
) -> sa.Update:
    table, pk = target.table, target.pk_columns
    open_before = sa.and_(
        target.end_column.is_(None), target.tx_column != tx_id, match_keys(pk, keys)
    )
    update = table.update().values({target.end_column.key: tx_id})
    if dialect != "postgresql":
        return update.where(open_before)
    # Lock in primary-key order, then update what was locked: concurrent flushes over
    # overlapping records take their locks in the same order and cannot deadlock here.
    locked = (
        sa.select(*pk, target.tx_column)
        .where(open_before)
        .order_by(*pk, target.tx_column)
        .with_for_update()
        .subquery("locked")
    )
    return update.where(
        *(column == locked.c[column.name] for column in pk),
        target.tx_column == locked.c[target.tx_column.name],
    )


def _sort_key(key: tuple[Any, ...]) -> tuple[tuple[bool, Any], ...]:
    return tuple((value is None, value) for value in key)
