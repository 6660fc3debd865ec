"""The archive: history the pruner deletes, kept as Parquet in Hive-style partitions.

Layout under the archive's root (a directory or any fsspec URL)::

    manifest.json
    <table>/month=YYYY-MM/part-<run>-<batch>.parquet

:mod:`~vestige.archive.writer` writes it batch by batch for the pruner,
:mod:`~vestige.archive.reader` reads a record's archived rows through DuckDB,
:mod:`~vestige.archive.verify` checks every file against the manifest and lists them.
"""

from __future__ import annotations

import os

# Arrow's jemalloc pool keeps a background thread that, when the interpreter exits while
# it runs, can abort the process ("terminate called without an active exception", seen
# under load after a successful `vestige archive verify`); the system allocator has none.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")

from vestige.archive.failpoints import FAILPOINT_ENV, FAILPOINT_EXIT
from vestige.archive.manifest import COMMITTED, MANIFEST, PENDING, FileEntry, Manifest
from vestige.archive.reader import ArchiveReader
from vestige.archive.target import ArchiveTarget, open_target
from vestige.archive.verify import (
    ArchiveListing,
    Problem,
    VerifyReport,
    archive_bytes,
    listing,
    verify,
)
from vestige.archive.writer import (
    ArchiveWriter,
    Part,
    Reconciled,
    Staged,
    month_label,
    part_path,
)

__all__ = [
    "COMMITTED",
    "FAILPOINT_ENV",
    "FAILPOINT_EXIT",
    "MANIFEST",
    "PENDING",
    "ArchiveListing",
    "ArchiveReader",
    "ArchiveTarget",
    "ArchiveWriter",
    "FileEntry",
    "Manifest",
    "Part",
    "Problem",
    "Reconciled",
    "Staged",
    "VerifyReport",
    "archive_bytes",
    "listing",
    "month_label",
    "open_target",
    "part_path",
    "verify",
]
