"""Reading archived rows back through DuckDB, matched to today's columns by name.

Files written before a column was added lack it (it reads as ``None``); columns dropped
since are not read. Only committed files are read (see :mod:`vestige.archive.manifest`),
and, for an integer key, only the files whose key range holds the record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import duckdb
import sqlalchemy as sa

from vestige.archive.manifest import FileEntry, Manifest
from vestige.archive.parquet import decode_value
from vestige.archive.target import ArchiveTarget, open_target, storage_errors

__all__ = ["ArchiveReader"]

READ_FAILED = "archive {url}: {action} failed: {cause}"


class ArchiveReader:
    """A read-only view of the archive at ``url``, with one DuckDB connection.

    Args:
        url: A directory or fsspec URL.
        naive_times: Give timezone-aware times back as naive UTC, as SQLite does; the
            rows then compare equal with the database's own.

    Raises:
        ArchiveError: The archive or its manifest cannot be read.
    """

    def __init__(self, url: str, *, naive_times: bool = False) -> None:
        self.target: ArchiveTarget = open_target(url)
        self.manifest = Manifest.load(self.target)
        self.naive_times = naive_times
        self._by_table: dict[str, list[FileEntry]] = {}
        for entry in self.manifest.committed:
            self._by_table.setdefault(entry.table, []).append(entry)
        self._duckdb: duckdb.DuckDBPyConnection | None = None

    @property
    def url(self) -> str:
        return self.target.url

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._duckdb is None:
            conn = duckdb.connect()
            conn.execute("SET TimeZone = 'UTC'")
            if self.target.local_path("") is None:
                conn.register_filesystem(self.target.fs)
            self._duckdb = conn
        return self._duckdb

    def close(self) -> None:
        if self._duckdb is not None:
            self._duckdb.close()
            self._duckdb = None

    def __enter__(self) -> ArchiveReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def files(self, table: str) -> list[FileEntry]:
        """The committed files of ``table``."""
        return list(self._by_table.get(table, []))

    def _location(self, entry: FileEntry) -> str:
        local = self.target.local_path(entry.path)
        if local is not None:
            return local
        return f"{self.target.protocol}://{self.target.path(entry.path)}"

    def rows(self, table: sa.Table, where: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """The archived rows of ``table`` whose columns equal ``where``, as the database
        would return them: every column of ``table`` today, by name.

        Args:
            table: The table as the models declare it now.
            where: Column name -> value (e.g. a record's key), or a list of values.
        """
        where = dict(where or {})
        entries = [entry for entry in self.files(table.name) if _may_hold(entry, where)]
        if not entries:
            return []
        archived = {name for entry in entries for name, _ in entry.schema}
        wanted = [column for column in table.c if column.name in archived]
        if not wanted:
            return []
        quote = _quote
        select = ", ".join(quote(column.name) for column in wanted)
        parts: list[str] = []
        params: list[Any] = []
        for name, value in where.items():
            if isinstance(value, list | set | frozenset):
                values = list(value)
                parts.append(f"{quote(name)} IN ({', '.join('?' for _ in values)})")
                params.extend(values)
            else:
                parts.append(f"{quote(name)} = ?")
                params.append(value)
        conditions = " AND ".join(parts) or "TRUE"
        files = [self._location(entry) for entry in entries]
        sql = f"SELECT {select} FROM read_parquet(?, union_by_name = true) WHERE {conditions}"
        with storage_errors(self.url, f"reading {table.name}", READ_FAILED):
            found = self._connection().execute(sql, [files, *params]).fetchall()
        position = {column.name: i for i, column in enumerate(wanted)}
        naive = self.naive_times
        return [
            {
                column.name: decode_value(column, row[position[column.name]], naive_times=naive)
                if column.name in position
                else None
                for column in table.c
            }
            for row in found
        ]

    def count(self, table: str) -> int:
        """The archived rows of ``table``, from the manifest."""
        return sum(entry.rows for entry in self.files(table))


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _may_hold(entry: FileEntry, where: Mapping[str, Any]) -> bool:
    """False when the file's key range rules the record out (integer keys only)."""
    if not where or not entry.key_columns or entry.key_columns[0] not in where:
        return True
    wanted = where[entry.key_columns[0]]
    values = list(wanted) if isinstance(wanted, list | set | frozenset) else [wanted]
    low, high = entry.key_min[0], entry.key_max[0]
    if all(_integer(item) for item in (*values, low, high)):
        return any(low <= value <= high for value in values)
    return True


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
