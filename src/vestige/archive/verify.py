"""Checking an archive against its manifest, and listing what it holds."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from vestige.archive.manifest import Manifest
from vestige.archive.parquet import read_back, sha256
from vestige.archive.target import open_target

__all__ = ["ArchiveListing", "Problem", "VerifyReport", "archive_bytes", "listing", "verify"]

MISSING = "missing"
CHANGED = "SHA-256 differs from the manifest"
UNREADABLE = "not readable as Parquet: {cause}"
WRONG_ROWS = "{found} rows, the manifest says {rows}"
UNLISTED = "not in the manifest"
PENDING = "pending: an interrupted prune left it; the next prune settles it"


@dataclass(frozen=True)
class Problem:
    """A file that does not match the manifest."""

    path: str
    problem: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "problem": self.problem}


@dataclass(frozen=True)
class VerifyReport:
    """What :func:`verify` found.

    Attributes:
        url: The archive.
        files: Committed files checked.
        rows: Rows in them.
        bytes: Their size.
        problems: Files missing, changed, unreadable or not in the manifest.
        pending: Files an interrupted prune left pending (not counted as problems).
    """

    url: str
    files: int
    rows: int
    bytes: int
    problems: tuple[Problem, ...] = ()
    pending: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "ok": self.ok,
            "files": self.files,
            "rows": self.rows,
            "bytes": self.bytes,
            "problems": [problem.to_dict() for problem in self.problems],
            "pending": list(self.pending),
        }


def verify(url: str) -> VerifyReport:
    """Re-read every committed file of the archive at ``url`` against its manifest.

    Each file must exist, have the manifest's SHA-256, parse as Parquet and hold the
    manifest's row count; every Parquet file under the root must be in the manifest.

    Raises:
        ArchiveError: The archive or its manifest cannot be read at all.
    """
    target = open_target(url)
    manifest = Manifest.load(target)
    problems: list[Problem] = []
    rows = size = 0
    present = set(target.files())
    for entry in manifest.committed:
        if entry.path not in present:
            problems.append(Problem(entry.path, MISSING))
            continue
        data = target.read(entry.path)
        if sha256(data) != entry.sha256:
            problems.append(Problem(entry.path, CHANGED))
            continue
        try:
            found = read_back(data).num_rows
        except Exception as exc:  # pyarrow raises several kinds for a broken file
            problems.append(Problem(entry.path, UNREADABLE.format(cause=exc)))
            continue
        if found != entry.rows:
            problems.append(Problem(entry.path, WRONG_ROWS.format(found=found, rows=entry.rows)))
            continue
        rows += entry.rows
        size += len(data)
    listed = {entry.path for entry in manifest.files}
    problems.extend(
        Problem(path, UNLISTED) for path in sorted(present - listed) if path.endswith(".parquet")
    )
    pending = tuple(entry.path for entry in manifest.pending)
    return VerifyReport(url, len(manifest.committed), rows, size, tuple(problems), pending)


@dataclass(frozen=True)
class ArchiveListing:
    """One table and month of an archive: its committed files, rows and bytes."""

    table: str
    month: str
    files: int
    rows: int
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "month": self.month,
            "files": self.files,
            "rows": self.rows,
            "bytes": self.bytes,
        }


def listing(url: str) -> list[ArchiveListing]:
    """What the archive at ``url`` holds, per table and month, from its manifest.

    Raises:
        ArchiveError: The archive or its manifest cannot be read.
    """
    manifest = Manifest.load(open_target(url))
    totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for entry in manifest.committed:
        total = totals[(entry.table, entry.month)]
        total[0] += 1
        total[1] += entry.rows
        total[2] += entry.bytes
    return [
        ArchiveListing(table, month, *totals[(table, month)]) for table, month in sorted(totals)
    ]


def archive_bytes(url: str) -> int:
    """The size of the archive's committed files, from its manifest (0 if it has none)."""
    return sum(entry.bytes for entry in Manifest.load(open_target(url)).committed)
