"""History: reading it (:mod:`~vestige.history.reading`) and restoring it.

Restoring is :mod:`~vestige.history.restore`.
"""

from __future__ import annotations

from vestige.history.archived import use_archive
from vestige.history.paging import (
    Cursor,
    ModelSummary,
    Page,
    model_summary,
    touched_records,
    transaction_details,
    transaction_rows,
    transactions_page,
    versions_page,
)
from vestige.history.queries import label_attribute
from vestige.history.reading import (
    Change,
    Operation,
    Touched,
    TransactionChanges,
    Version,
    as_of,
    at,
    changes,
    changes_dict,
    diff,
    history,
)
from vestige.history.restore import (
    Action,
    RestorePlan,
    RestoreResult,
    RowChange,
    plan_restore,
    restore,
)

__all__ = [
    "Action",
    "Change",
    "Cursor",
    "ModelSummary",
    "Operation",
    "Page",
    "RestorePlan",
    "RestoreResult",
    "RowChange",
    "Touched",
    "TransactionChanges",
    "Version",
    "as_of",
    "at",
    "changes",
    "changes_dict",
    "diff",
    "history",
    "label_attribute",
    "model_summary",
    "plan_restore",
    "restore",
    "touched_records",
    "transaction_details",
    "transaction_rows",
    "transactions_page",
    "use_archive",
    "versions_page",
]
