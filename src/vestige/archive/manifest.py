"""``manifest.json``: the list of an archive's files, what each holds and whether it counts.

A file is *pending* from before it is written until the database batch it copies is
committed, then *committed*. Readers and ``vestige archive verify`` take committed files
only; a pruner starting on the archive settles the pending ones first
(:meth:`vestige.archive.writer.ArchiveWriter.reconcile`). ``manifest.json`` is replaced
whole (a temporary file, then a move), so a crash leaves the old one or the new one;
between compactions, each change is a small journal file (see :class:`Manifest`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from typing import Any

from vestige.archive.target import ArchiveTarget
from vestige.errors import ArchiveError

__all__ = ["COMMITTED", "DROPPED", "JOURNAL", "MANIFEST", "PENDING", "FileEntry", "Manifest"]

MANIFEST = "manifest.json"
FORMAT = 1
PENDING = "pending"
COMMITTED = "committed"
DROPPED = "dropped"
JOURNAL = "_journal"
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
        # shallow: dataclasses.asdict deep-copies every list, a cost per file that adds
        # up over thousands of files (each value here is already plain JSON)
        return {name: getattr(self, name) for name in _FIELDS}


_FIELDS = tuple(item.name for item in fields(FileEntry))


@dataclass
class Manifest:
    """The files of an archive, in the order they were written.

    ``manifest.json`` holds the list as of its last compaction; changes since are small
    journal files under ``_journal/``, one per step of a batch (its files pending, then
    committed or dropped), so that a batch costs two small writes however long the list
    is. Loading replays them in name order (run, batch, step); :meth:`compact` folds them
    into ``manifest.json`` and removes them, oldest first, so that a crash in between
    leaves a suffix of the journal, whose replay changes nothing.
    """

    entries: dict[str, FileEntry] = field(default_factory=dict)
    journals: list[str] = field(default_factory=list)

    @property
    def files(self) -> list[FileEntry]:
        return list(self.entries.values())

    @classmethod
    def load(cls, target: ArchiveTarget) -> Manifest:
        """The archive's manifest; an empty one if the archive has none yet.

        Raises:
            ArchiveError: The manifest or a journal file cannot be read or is not one.
        """
        manifest = cls()
        if target.exists(MANIFEST):
            data = _json(target, MANIFEST)
            if data.get("format") != FORMAT:
                raise ArchiveError(
                    BAD_MANIFEST.format(
                        url=target.url,
                        name=MANIFEST,
                        cause=f"format {data.get('format')!r}, expected {FORMAT}",
                    )
                )
            manifest.entries = {entry.path: entry for entry in _entries(target, MANIFEST, data)}
        journals = [path for path in target.files() if path.startswith(JOURNAL + "/")]
        for name in sorted(journals):
            if name.endswith(".json"):
                manifest._apply(target, name, _json(target, name))
                manifest.journals.append(name)
        return manifest

    def _apply(self, target: ArchiveTarget, name: str, step: dict[str, Any]) -> None:
        status = step.get("status")
        if status == PENDING:
            for entry in _entries(target, name, step):
                self.entries[entry.path] = entry
        elif status == COMMITTED:
            self.mark(set(step.get("paths", [])), COMMITTED)
        elif status == DROPPED:
            self.drop(set(step.get("paths", [])))

    def record(self, target: ArchiveTarget, name: str, step: dict[str, Any]) -> str:
        """Write one journal step and apply it here. It is not flushed to disk: the
        caller syncs the steps that must survive a crash of the machine
        (:meth:`ArchiveTarget.sync`).

        Args:
            target: The archive.
            name: Its name under ``_journal/`` without the suffix; names sort in the
                order steps happen (``<run>-<batch>-<step>``).
            step: ``{"status": "pending", "files": [...]}``, or ``committed`` / ``dropped``
                with ``"paths"``.

        Returns:
            Its path in the archive.
        """
        path = f"{JOURNAL}/{name}.json"
        target.write(path, json.dumps(step, default=str).encode(), durable=False)
        self._apply(target, path, step)
        self.journals.append(path)
        return path

    def save(self, target: ArchiveTarget) -> None:
        """Replace ``manifest.json`` in ``target`` with this manifest (journal not removed)."""
        # a file per line: readable and diffable, and encoded by json's C encoder (with
        # ``indent`` it falls back to pure Python, slow and memory-hungry on long lists)
        lines = ",\n".join(
            json.dumps(entry.to_dict(), default=str) for entry in self.entries.values()
        )
        files = f"[\n{lines}\n]" if lines else "[]"
        text = f'{{"format": {FORMAT}, "files": {files}}}\n'
        target.replace(MANIFEST, text.encode())

    def compact(self, target: ArchiveTarget) -> None:
        """Fold the journal into ``manifest.json`` and remove its files, oldest first."""
        self.save(target)
        for path in sorted(self.journals):
            target.remove(path)
        self.journals.clear()

    @property
    def committed(self) -> list[FileEntry]:
        return [entry for entry in self.entries.values() if entry.status == COMMITTED]

    @property
    def pending(self) -> list[FileEntry]:
        return [entry for entry in self.entries.values() if entry.status == PENDING]

    def mark(self, paths: set[str], status: str) -> None:
        for path in paths:
            if path in self.entries:
                self.entries[path] = replace(self.entries[path], status=status)

    def drop(self, paths: set[str]) -> None:
        for path in paths:
            self.entries.pop(path, None)


def _json(target: ArchiveTarget, name: str) -> dict[str, Any]:
    try:
        data = json.loads(target.read(name))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return data
    except ValueError as exc:
        raise ArchiveError(BAD_MANIFEST.format(url=target.url, name=name, cause=exc)) from None


def _entries(target: ArchiveTarget, name: str, data: dict[str, Any]) -> list[FileEntry]:
    try:
        return [FileEntry(**entry) for entry in data["files"]]
    except (TypeError, KeyError) as exc:
        raise ArchiveError(BAD_MANIFEST.format(url=target.url, name=name, cause=exc)) from None
