"""The rows an archiving prune deletes, collected for the archive as they are deleted.

Each DELETE of an archiving run returns the rows it deleted (``RETURNING`` every column);
:class:`Collector` takes them and hands them to :mod:`vestige.archive` as a
:class:`~vestige.archive.Part` per table, each row followed by the month (``YYYYMM``) of
its transaction: the partition its file goes to. A million rows pass through here in a
large run, so the rows stay the driver's tuples wherever SQLAlchemy would not convert
their values anyway.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:
    from vestige.archive import Part

__all__ = ["Collector"]


class Collector:
    """One archiving run's collection of deleted rows, on its connection."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self._as_driver_gives: dict[str, bool] = {}

    def delete(
        self,
        statement: sa.Delete,
        table: sa.Table,
        into: list[Sequence[Any]],
        *also: sa.ColumnElement[Any],
    ) -> int:
        """Run ``statement`` returning every column of ``table``, then ``also``; add the
        deleted rows to ``into``.

        Returns:
            The number of rows deleted.
        """
        result = self.conn.execute(statement.returning(*table.c, *also))
        if self._unconverted(table, result):
            rows: Sequence[Sequence[Any]] = result.cursor.fetchall()
            result.close()
        else:
            rows = result.all()
        into.extend(rows)
        return len(rows)

    def _unconverted(self, table: sa.Table, result: sa.CursorResult[Any]) -> bool:
        """Whether the driver's values of ``table``'s columns are what SQLAlchemy gives
        (no column type converts them, as with psycopg2 and the usual types), so that
        the rows can be taken as the driver returns them, without a
        :class:`~sqlalchemy.engine.Row` built for each (a second per million rows)."""
        found = self._as_driver_gives.get(table.name)
        if found is None:
            dialect = self.conn.dialect
            described = result.cursor.description or ()
            try:
                # a TypeDecorator's values: always as SQLAlchemy gives them (the archive
                # stores them through its process_bind_param)
                found = len(described) >= len(table.c) and all(
                    not isinstance(column.type, sa.TypeDecorator)
                    and column.type.dialect_impl(dialect).result_processor(dialect, item[1]) is None
                    for column, item in zip(table.c, described, strict=False)
                )
            except Exception:  # a type that cannot tell: let SQLAlchemy convert
                found = False
            self._as_driver_gives[table.name] = found
        return found

    @staticmethod
    def part(table: sa.Table, rows: Sequence[Sequence[Any]], order: Sequence[str]) -> Part:
        """Deleted rows that came each with its transaction's month as one more value.

        Args:
            table: The table they were deleted from.
            rows: The rows.
            order: The columns the archive sorts by (the key, then the transaction).
        """
        from vestige.archive import Part  # only with an archive: its extra is installed

        return Part(table, rows, order)

    @staticmethod
    def transaction_part(
        rows: Sequence[Sequence[Any]], months: Mapping[Any, Any], transaction: sa.Column[Any]
    ) -> Part:
        """Deleted rows of a transaction table, each followed by its transaction's month.

        Args:
            rows: The rows of ``transaction``'s table.
            months: ``YYYYMM`` by transaction id.
            transaction: The table's column of the transaction id.
        """
        from vestige.archive import Part  # only with an archive: its extra is installed

        table = transaction.table
        key = [column.name for column in table.primary_key.columns] or [transaction.name]
        tx_at = list(table.c).index(transaction)
        return Part(table, [(*row, months.get(row[tx_at])) for row in rows], key)
