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

from vestige.retention.prunable import VersionTable

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

    def version_part(
        self,
        target: VersionTable,
        order: Sequence[str],
        issued: sa.Select[Any],
        tagged: Sequence[Sequence[Any]],
        rows: Sequence[Sequence[Any]],
    ) -> Part:
        """A batch's deleted version rows, each followed by its transaction's month.

        Args:
            target: The version table.
            order: The columns the archive sorts by (the key, then the transaction).
            issued: The batch's transaction ids and their months, from the keys table.
            tagged: Rows that came with their month as one more value.
            rows: Rows that came without (deleted by key): their months are looked up
                in ``issued``.
        """
        from vestige.archive import Part  # only with an archive: its extra is installed

        if not rows:
            return Part(target.table, tagged, order)
        result = self.conn.execute(issued)  # two integer columns: as the driver gives them
        months = dict(result.cursor.fetchall())
        result.close()
        tx_at = list(target.table.c).index(target.transaction_id)
        return Part(
            target.table, [*tagged, *((*row, months.get(row[tx_at])) for row in rows)], order
        )

    @staticmethod
    def part(
        table: sa.Table,
        rows: Sequence[Sequence[Any]],
        months: Mapping[Any, Any],
        transaction: sa.Column[Any],
    ) -> Part:
        """Deleted rows of a transaction table, each followed by its transaction's month.

        Args:
            table: ``transaction``, or a table describing transactions.
            rows: The rows.
            months: ``YYYYMM`` by transaction id.
            transaction: ``table``'s column of the transaction id.
        """
        from vestige.archive import Part  # only with an archive: its extra is installed

        key = [column.name for column in table.primary_key.columns] or [transaction.name]
        tx_at = list(table.c).index(transaction)
        return Part(table, [(*row, months.get(row[tx_at])) for row in rows], key)
