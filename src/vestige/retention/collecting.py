"""The rows an archiving prune deletes, collected for the archive as they are deleted.

Each DELETE of an archiving run returns the rows it deleted, each followed by the month
(``YYYYMM``) of its transaction: the partition its file goes to. :class:`Collector` takes
them as Arrow columns and hands them to :mod:`vestige.archive` as a
:class:`~vestige.archive.Part` per table. A million rows pass through here in a large
run, so they take the shortest way there is:

* on PostgreSQL, for a table of plain types (:func:`~vestige.archive.parquet.csv_readable`),
  ``COPY (DELETE ... RETURNING ...) TO STDOUT`` in CSV, parsed by Arrow in C: no Python
  object per value. A value Arrow cannot parse as its column's type (a time of
  ``infinity``) rolls the DELETE back to a savepoint, and the table's rows are taken the
  next way from then on;
* otherwise ``DELETE ... RETURNING``, the rows as the driver returns them where no column
  type converts them (no :class:`~sqlalchemy.engine.Row` built for each), else as
  SQLAlchemy gives them.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.sql.compiler import SQLCompiler

if TYPE_CHECKING:
    import pyarrow as pa

    from vestige.archive import Part

    #: Deleted rows as Arrow: the table's columns, and the month of each row.
    Chunk = tuple[pa.Table, pa.Array]

__all__ = ["Collector"]


class _Unparsable(Exception):
    """COPY's statement or output could not be made or parsed; the DELETE is rolled back
    to its savepoint."""


@dataclass
class _Prepared:
    """A DELETE as run for the archive. It holds the statement and month it was made
    from, so that their ids (its key in :class:`Collector`) stay theirs."""

    statement: sa.Delete
    month: sa.ColumnElement[Any]
    returning: Any  # the statement RETURNING every column, then the month
    compiled: SQLCompiler | None = None  # its text, once written for COPY


class Collector:
    """One archiving run's collection of deleted rows, on its connection."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self._as_driver_gives: dict[str, bool] = {}
        self._by_copy: dict[str, bool] = {}
        self._prepared: dict[tuple[int, int], _Prepared] = {}

    def delete(
        self,
        statement: sa.Delete,
        table: sa.Table,
        into: list[Chunk],
        month: sa.ColumnElement[Any],
        params: Mapping[str, Any],
    ) -> int:
        """Run ``statement`` with ``params``, taking every column of ``table`` and
        ``month`` (``YYYYMM`` of each row's transaction) of the rows it deletes; add them
        to ``into``.

        Returns:
            The number of rows deleted.
        """
        prepared = self._prepare(statement, table, month)
        if self._copyable(table):
            try:
                chunk = self._copy(prepared, table, params)
            except _Unparsable:
                self._by_copy[table.name] = False  # its other rows too, most likely
            else:
                into.append(chunk)
                return int(chunk[0].num_rows)
        from vestige.archive.parquet import to_arrow

        result = self.conn.execute(prepared.returning, params)
        rows: Sequence[Sequence[Any]]
        if self._unconverted(table, result):
            rows = result.cursor.fetchall()
            result.close()
        else:
            rows = result.all()
        into.append(to_arrow(table, rows))
        return len(rows)

    def _prepare(
        self, statement: sa.Delete, table: sa.Table, month: sa.ColumnElement[Any]
    ) -> _Prepared:
        """``statement`` returning ``table``'s columns and ``month``: one record for the
        same statement and month, so that its SQL is written once for all batches."""
        key = (id(statement), id(month))
        found = self._prepared.get(key)
        if found is None:
            returning = statement.returning(*table.c, month)
            found = self._prepared[key] = _Prepared(statement, month, returning)
        return found

    def by_copy(self, table: sa.Table) -> bool | None:
        """Whether ``table``'s deleted rows come by ``COPY`` (``None``: none deleted yet)."""
        return self._by_copy.get(table.name)

    def _copyable(self, table: sa.Table) -> bool:
        """Whether ``table``'s deleted rows can come as CSV (PostgreSQL, UTF-8, plain types)."""
        found = self._by_copy.get(table.name)
        if found is None:
            from vestige.archive.parquet import csv_readable

            dbapi = self.conn.connection.dbapi_connection
            found = (
                self.conn.dialect.driver == "psycopg2"
                and getattr(dbapi, "encoding", None) in {"UTF8", "UNICODE"}
                and csv_readable(table)
            )
            self._by_copy[table.name] = found
        return found

    def _copy(self, prepared: _Prepared, table: sa.Table, params: Mapping[str, Any]) -> Chunk:
        """``COPY (returning) TO STDOUT`` in CSV, parsed; after a savepoint, rolled back
        to if the rows cannot be parsed (one round trip: the savepoint is not released,
        the batch's commit ends it).

        Raises:
            _Unparsable: Arrow could not parse a value as its column's type, or the
                statement could not be written out whole; nothing was deleted.
        """
        import pyarrow as pa

        from vestige.archive.parquet import from_csv

        dbapi = self.conn.connection.dbapi_connection
        assert dbapi is not None  # the connection is open: a statement ran on it
        cursor = dbapi.cursor()
        try:
            sql = self._inline(prepared, params, cursor)
            cursor.execute("SAVEPOINT vestige_copy")
            out = io.BytesIO()
            cursor.copy_expert(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", out)
            try:
                return from_csv(table, out.getvalue())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                cursor.execute("ROLLBACK TO SAVEPOINT vestige_copy")
                raise _Unparsable(str(exc)) from exc
        finally:
            cursor.close()

    def _inline(self, prepared: _Prepared, params: Mapping[str, Any], cursor: Any) -> str:
        """The prepared statement with ``params`` and its other values in place, as the
        driver would send them (COPY takes no parameters).

        Raises:
            _Unparsable: A value would need SQLAlchemy's conversion first (the statements
                here bind integers only: batch bounds, months).
        """
        dialect = self.conn.dialect
        compiled = prepared.compiled
        if compiled is None:
            written = prepared.returning.compile(dialect=dialect)
            assert isinstance(written, SQLCompiler)
            compiled = written
            if compiled.post_compile_params or compiled.literal_execute_params:
                # values rendered per execution (IN lists): the text would not be reusable
                raise _Unparsable("the statement is written anew for each execution")
            for name, bind in compiled.binds.items():
                if bind.type.dialect_impl(dialect).bind_processor(dialect):
                    raise _Unparsable(f"the value of {name} needs converting")
            prepared.compiled = compiled
        values = compiled.construct_params(params)
        inlined: bytes = cursor.mogrify(compiled.string, values)
        return inlined.decode()  # the connection speaks UTF-8 (see _copyable)

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
    def part(table: sa.Table, chunks: Sequence[Chunk], order: Sequence[str]) -> Part:
        """One table's deleted rows of a batch, for the archive.

        Args:
            table: The table they were deleted from.
            chunks: The rows, as :meth:`delete` collected them.
            order: The columns the archive sorts by (the key, then the transaction).
        """
        import pyarrow as pa

        from vestige.archive import Part  # only with an archive: its extra is installed

        rows = pa.concat_tables([rows for rows, _ in chunks])
        months = pa.chunked_array([months for _, months in chunks]).combine_chunks()
        return Part(table, rows, months, order)

    @staticmethod
    def transaction_order(transaction: sa.Column[Any]) -> list[str]:
        """The columns a transaction table's archived rows are sorted by: its primary key
        (or, without one, the transaction)."""
        table = transaction.table
        return [column.name for column in table.primary_key.columns] or [transaction.name]
