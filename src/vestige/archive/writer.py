"""Writing an archive: each batch's rows as Parquet, safely, before the batch is deleted.

The pruner hands a batch over with its database transaction still open (the rows are
deleted but not committed); what happens then, and what a rerun finds after a crash at
each step:

1. the batch's files are added to the manifest as *pending* (crash: the database rolls
   the batch back; the rerun drops the entries, whose files do not exist);
2. each file is written, flushed, and read back whole: row count and SHA-256 checked
   (crash or failure: the database rolls back; the rerun finds the rows still in the
   database and removes the files and their entries, so they are archived once, later);
3. the pruner commits the database batch (crash: the rerun finds the rows gone from
   the database and marks the files committed);
4. the entries are marked *committed*.

So no row leaves the database without a file that was read back, and no row is in two
committed files. A failing archive (a bad URL, permissions, a full disk) raises
:class:`~vestige.errors.ArchiveError` before step 3: the batch stays in the database.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from vestige.archive.failpoints import failpoint
from vestige.archive.manifest import COMMITTED, DROPPED, PENDING, FileEntry, Manifest
from vestige.archive.parquet import (
    arrow_schema,
    read_back,
    row_count,
    sha256,
    sorted_order,
    to_parquet,
)
from vestige.archive.target import ArchiveTarget, open_target
from vestige.errors import ArchiveError

__all__ = [
    "ArchiveWriter",
    "Part",
    "Reconciled",
    "Staged",
    "month_label",
    "new_run_id",
    "part_path",
]

UNKNOWN_MONTH = "unknown"
READ_BACK_FAILED = "archive {url}: {path} did not read back as written ({cause})"
HALF_DELETED = (
    "archive {url}: {path} is pending and {present} of its {rows} rows are still in {table}; "
    "a batch is deleted whole, so something else changed them: inspect the file, then "
    "remove it and its manifest entry"
)


def month_label(number: Any) -> str:
    """The partition value of a ``YYYYMM`` number (as SQL's ``month_number`` gives it)."""
    if not number:
        return UNKNOWN_MONTH
    year, month = divmod(int(number), 100)
    return f"{year:04d}-{month:02d}"


def part_path(table: str, month: str, run: str, batch: int) -> str:
    """``<table>/month=YYYY-MM/part-<run>-<batch>.parquet``."""
    return f"{table}/month={month}/part-{run}-{batch:06d}.parquet"


def new_run_id(now: datetime | None = None) -> str:
    """A run's name: its start time (UTC) and a random suffix, sortable by time."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class Part:
    """One table's rows of a batch, as deleted.

    Attributes:
        table: The table the rows were deleted from.
        rows: The rows, as :func:`~vestige.archive.parquet.to_arrow` gives them.
        months: The month of each row's transaction as a number, ``YYYYMM`` (``None``:
            unknown): the partition its file goes to.
        order: The columns to sort by: the record's key, then the transaction.
    """

    table: sa.Table
    rows: pa.Table
    months: pa.Array
    order: Sequence[str]


@dataclass(frozen=True)
class Staged:
    """A batch's files: written and read back, listed as pending."""

    paths: frozenset[str]
    rows: int
    bytes: int


@dataclass(frozen=True)
class Reconciled:
    """What a pruner found pending when it opened the archive.

    Attributes:
        committed: Files whose rows had been deleted: now marked committed.
        discarded: Files whose rows were still in the database (or never written): removed.
    """

    committed: int
    discarded: int


class ArchiveWriter:
    """One pruner run's writer to the archive at ``url``.

    Opening it reads the manifest and writes it back: a target that cannot be read or
    written fails here, before anything is deleted.

    Args:
        url: A directory or fsspec URL.
        policy: The retention rules of the run, recorded with each file.
        run: The run's name (default: the start time and a random suffix).
    """

    def __init__(
        self, url: str, *, policy: Mapping[str, Any] | None = None, run: str | None = None
    ) -> None:
        self.target: ArchiveTarget = open_target(url)
        self.manifest = Manifest.load(self.target)
        self.manifest.compact(self.target)
        self.run = run or new_run_id()
        self.policy = dict(policy or {})
        self.batch = 0
        self.rows = 0
        self.bytes = 0
        self.files = 0

    @property
    def url(self) -> str:
        return self.target.url

    def reconcile(self, conn: sa.Connection, tables: Mapping[str, sa.Table]) -> Reconciled:
        """Settle the files an interrupted run left pending, against the database.

        Args:
            conn: A connection to the pruned database.
            tables: The tables an archive may hold, by name.
        """
        committed: set[str] = set()
        discarded: set[str] = set()
        for entry in self.manifest.pending:
            table = tables.get(entry.table)
            present = self._present(conn, entry, table) if table is not None else None
            if present is None or present == entry.rows:
                discarded.add(entry.path)
            elif present == 0:
                committed.add(entry.path)
            else:
                raise ArchiveError(
                    HALF_DELETED.format(
                        url=self.url,
                        path=entry.path,
                        present=present,
                        rows=entry.rows,
                        table=entry.table,
                    )
                )
        conn.rollback()
        for path in discarded:
            self.target.remove(path)
        if committed or discarded:
            self.manifest.mark(committed, COMMITTED)
            self.manifest.drop(discarded)
            self.manifest.compact(self.target)
        return Reconciled(len(committed), len(discarded))

    def _present(self, conn: sa.Connection, entry: FileEntry, table: sa.Table) -> int | None:
        """How many of the file's rows are in the database; ``None``: no readable file."""
        if not self.target.exists(entry.path):
            return None
        try:
            rows = read_back(self.target.read(entry.path))
        except Exception:  # a file cut short by a crash before the batch was committed
            return None
        key = list(table.primary_key.columns)
        values = list(zip(*(rows.column(column.name).to_pylist() for column in key), strict=True))
        present = 0
        match = sa.tuple_(*key) if len(key) > 1 else key[0]
        for start in range(0, len(values), 500):
            chunk = values[start : start + 500]
            wanted = chunk if len(key) > 1 else [value[0] for value in chunk]
            count = sa.select(sa.func.count()).select_from(table).where(match.in_(wanted))
            present += int(conn.execute(count).scalar_one())
        return present

    def stage(self, parts: Sequence[Part]) -> Staged:
        """Write one batch: per table and month one file, read back, listed as pending.

        The pending step, then the files, are written, the files read back, and all of
        them flushed to disk together before this returns: durable before the batch's
        DELETE commits, for one flush of a local file system's journal, not one each.

        Raises:
            ArchiveError: A file could not be written, or did not read back as written;
                nothing of this batch is left in the archive then.
        """
        self.batch += 1
        files: list[tuple[FileEntry, bytes]] = []
        for part in parts:
            files.extend(self._encode(part))
        staged = Staged(
            frozenset(entry.path for entry, _ in files),
            sum(entry.rows for entry, _ in files),
            sum(entry.bytes for entry, _ in files),
        )
        journal = self._journal(PENDING, files=[entry.to_dict() for entry, _ in files])
        failpoint("staged")
        try:
            for entry, data in files:
                self.target.write(entry.path, data, durable=False)
                self._check(entry)
            self.target.sync([journal, *(entry.path for entry, _ in files)])
        except BaseException:
            self.discard(staged)
            raise
        failpoint("written")
        return staged

    def _encode(self, part: Part) -> list[tuple[FileEntry, bytes]]:
        schema = [[field.name, str(field.type)] for field in arrow_schema(part.table)]
        months = part.months.fill_null(0)  # unknown
        order = sorted_order(part.rows, months, part.order)
        rows, months = part.rows.take(order), months.take(order)
        keys = rows.select(list(part.order))
        files: list[tuple[FileEntry, bytes]] = []
        start = 0
        for counted in pc.value_counts(months):  # months in sorted order, as first seen
            month, count = month_label(counted["values"].as_py()), counted["counts"].as_py()
            data = to_parquet(rows.slice(start, count))
            first, last = keys.slice(start, 1), keys.slice(start + count - 1, 1)
            entry = FileEntry(
                path=part_path(part.table.name, month, self.run, self.batch),
                table=part.table.name,
                month=month,
                rows=count,
                bytes=len(data),
                sha256=sha256(data),
                key_columns=list(part.order),
                key_min=[column[0].as_py() for column in first.columns],
                key_max=[column[0].as_py() for column in last.columns],
                schema=schema,
                run=self.run,
                batch=self.batch,
                policy=self.policy,
            )
            files.append((entry, data))
            start += count
        return files

    def _check(self, entry: FileEntry) -> None:
        written = self.target.read(entry.path)
        problem = None
        if sha256(written) != entry.sha256:
            problem = "its SHA-256 differs"
        else:
            try:
                rows = row_count(written)
            except Exception as exc:  # pyarrow's errors: anything unreadable
                rows, problem = -1, f"unreadable: {exc}"
            if problem is None and rows != entry.rows:
                problem = f"{rows} rows instead of {entry.rows}"
        if problem:
            raise ArchiveError(
                READ_BACK_FAILED.format(url=self.url, path=entry.path, cause=problem)
            )

    def discard(self, staged: Staged) -> None:
        """Remove a batch that will not be committed: its files and entries (best effort)."""
        removed = []
        for path in sorted(staged.paths):
            try:
                self.target.remove(path)
            except ArchiveError:
                pass  # an unremovable file stays pending; the next run settles it
            else:
                removed.append(path)
        # if this fails the entries stay pending; the next run finds the rows and drops them
        with suppress(ArchiveError):
            self._journal(DROPPED, paths=removed)

    def _journal(self, status: str, **step: Any) -> str:
        """Write a journal step; returns its path. Only the pending step must survive a
        crash of the machine (without it, deleted rows' files would be unlisted), and
        :meth:`stage` syncs it with the batch's files. A lost committed or dropped step
        leaves the files pending, and the next run settles them against the database."""
        order = {PENDING: 1, COMMITTED: 2, DROPPED: 2}[status]
        name = f"{self.run}-{self.batch:06d}-{order}-{status}"
        step = {"status": status, **step}
        return self.manifest.record(self.target, name, step)

    def close(self) -> None:
        """Fold this run's journal into ``manifest.json`` (at the end of a run)."""
        self.manifest.compact(self.target)

    def commit(self, staged: Staged) -> None:
        """Mark a batch committed, once the database has committed its deletion."""
        failpoint("committed")
        self._journal(COMMITTED, paths=sorted(staged.paths))
        self.rows += staged.rows
        self.bytes += staged.bytes
        self.files += len(staged.paths)
