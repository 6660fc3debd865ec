"""What a retention run reports: per table counts, and progress while it runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = [
    "TRANSACTION_PHASE",
    "ArchiveSummary",
    "Progress",
    "ProgressCallback",
    "PruneReport",
    "TableReport",
]

TRANSACTION_PHASE = "transaction"


@dataclass(frozen=True)
class TableReport:
    """What a run did (or would do) to one version table.

    Attributes:
        table: The version table's name.
        examined: Its rows when the run looked at it.
        deleted: The rows deleted (a dry run: the rows it would delete).
        kept: The rows that stay.
        oldest_kept_issued_at: When the oldest version that stays was written.
    """

    table: str
    examined: int
    deleted: int
    kept: int
    oldest_kept_issued_at: datetime | None

    def to_dict(self, dry_run: bool = False) -> dict[str, Any]:
        """This report as the JSON object the command line prints.

        Args:
            dry_run: Name the count ``would_delete``, as nothing was deleted.
        """
        oldest = self.oldest_kept_issued_at
        return {
            "table": self.table,
            "examined": self.examined,
            "would_delete" if dry_run else "deleted": self.deleted,
            "kept": self.kept,
            "oldest_kept_issued_at": oldest.isoformat() if oldest else None,
        }


@dataclass(frozen=True)
class ArchiveSummary:
    """What a run wrote to its archive (a dry run: where it would write).

    Attributes:
        url: The archive, as given.
        run: The run's name in the archive's file names and manifest.
        files: Parquet files written and committed.
        rows: Rows in them (version, transaction and transaction-plugin rows).
        bytes: Their size.
        reconciled: Files an interrupted earlier run had left pending, settled first.
    """

    url: str
    run: str | None = None
    files: int = 0
    rows: int = 0
    bytes: int = 0
    reconciled: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "run": self.run,
            "files": self.files,
            "rows": self.rows,
            "bytes": self.bytes,
            "reconciled": self.reconciled,
        }


@dataclass(frozen=True)
class PruneReport:
    """The result of a run.

    Attributes:
        dry_run: Whether nothing was deleted (the counts are what would go).
        tables: One report per version table, in name order.
        transactions_deleted: ``transaction`` rows deleted (or that would be).
        seconds: Wall time of the run.
        archive: What was archived, when the run archived.
    """

    dry_run: bool
    tables: tuple[TableReport, ...]
    transactions_deleted: int
    seconds: float
    archive: ArchiveSummary | None = None

    @property
    def versions_deleted(self) -> int:
        """Version rows deleted (or that would be) over every table."""
        return sum(table.deleted for table in self.tables)

    def to_dict(self) -> dict[str, Any]:
        """The report as the one JSON object ``vestige prune --json`` prints.

        A dry run's counts are ``would_delete`` and ``transactions_would_delete``.
        """
        transactions = "transactions_would_delete" if self.dry_run else "transactions_deleted"
        found: dict[str, Any] = {
            "dry_run": self.dry_run,
            "tables": [table.to_dict(self.dry_run) for table in self.tables],
            transactions: self.transactions_deleted,
            "seconds": round(self.seconds, 3),
        }
        if self.archive is not None:
            found["archive"] = self.archive.to_dict()
        return found


@dataclass(frozen=True)
class Progress:
    """Reported after each committed batch (and once when a phase starts).

    Attributes:
        phase: The version table being pruned, or ``"transaction"``.
        done: Rows deleted so far in this phase.
        total: Rows this phase will delete (for transactions: the candidates found).
    """

    phase: str
    done: int
    total: int


ProgressCallback = Callable[[Progress], None]
