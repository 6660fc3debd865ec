"""``manifest.json``: the list of an archive's files, what each holds and whether it counts.

A file is *pending* from before it is written until the database batch it copies is
committed, then *committed*. Readers and ``vestige archive verify`` take committed files
only; a pruner starting on the archive settles the pending ones first
(:meth:`vestige.archive.writer.ArchiveWriter.reconcile`). The manifest is replaced whole
(a temporary file, then a move), so a crash leaves the old one or the new one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from vestige.archive.target import ArchiveTarget
from vestige.errors import ArchiveError

__all__ = ["COMMITTED", "MANIFEST", "PENDING", "FileEntry", "Manifest"]

MANIFEST = "manifest.json"
FORMAT = 1
PENDING = "pending"
COMMITTED = "committed"
BAD_MANIFEST = "archive {url}: {name} is not a Vestige manifest ({cause})"


@dataclass(frozen=True)
class FileEntry:
    """One Parquet file of the archive.

    Attributes:
        path: Its path under the archive root, ``<table>/month=YYYY-MM/part-<run>-<batch>.parquet``.
        table: The database table its rows came from.
        month: The month of its rows' transactions (``YYYY-MM``).
        rows: Its row count.
        bytes: Its size.
        sha256: The SHA-256 of its bytes.
        key_columns: The columns its rows are sorted by (the key, then the transaction).
        key_min: The first row's values of ``key_columns``.
        key_max: The last row's.
        schema: ``[name, Arrow type]`` per column.
        run: The pruner run that wrote it.
        batch: The batch of that run.
        policy: The retention rules of that run.
        status: ``pending`` or ``committed``.
    """

    path: str
    table: str
    month: str
    rows: int
    bytes: int
    sha256: str
    key_columns: list[str]
    key_min: list[Any]
    key_max: list[Any]
    schema: list[list[str]]
    run: str
    batch: int
    policy: dict[str, Any] = field(default_factory=dict)
    status: str = PENDING

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Manifest:
    """The files of an archive, in the order they were written."""

    files: list[FileEntry] = field(default_factory=list)

    @classmethod
    def load(cls, target: ArchiveTarget) -> Manifest:
        """The archive's manifest; an empty one if the archive has none yet.

        Raises:
            ArchiveError: The manifest cannot be read or is not one.
        """
        if not target.exists(MANIFEST):
            return cls()
        raw = target.read(MANIFEST)
        try:
            data = json.loads(raw)
            if data.get("format") != FORMAT:
                raise ValueError(f"format {data.get('format')!r}, expected {FORMAT}")
            return cls([FileEntry(**entry) for entry in data["files"]])
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ArchiveError(
                BAD_MANIFEST.format(url=target.url, name=MANIFEST, cause=exc)
            ) from None

    def save(self, target: ArchiveTarget) -> None:
        """Replace the manifest in ``target`` with this one."""
        data = {"format": FORMAT, "files": [entry.to_dict() for entry in self.files]}
        text = json.dumps(data, indent=1, default=str)
        target.replace(MANIFEST, text.encode())

    @property
    def committed(self) -> list[FileEntry]:
        return [entry for entry in self.files if entry.status == COMMITTED]

    @property
    def pending(self) -> list[FileEntry]:
        return [entry for entry in self.files if entry.status == PENDING]

    def mark(self, paths: set[str], status: str) -> None:
        self.files = [
            replace(entry, status=status) if entry.path in paths else entry for entry in self.files
        ]

    def drop(self, paths: set[str]) -> None:
        self.files = [entry for entry in self.files if entry.path not in paths]
