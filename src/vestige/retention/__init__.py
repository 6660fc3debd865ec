"""Retention: what may go (:mod:`~vestige.retention.policy`, :mod:`~vestige.retention.prunable`)
and the pruner that removes it (:mod:`~vestige.retention.engine`, with its
:mod:`~vestige.retention.lock` and :mod:`~vestige.retention.report`).
"""

from __future__ import annotations

from vestige.retention.engine import (
    DEFAULT_BATCH_SIZE,
    SQLITE_PAUSE,
    TRANSACTION_PHASE,
    Progress,
    PruneReport,
    TableReport,
    prune,
    version_tables,
)
from vestige.retention.policy import RULE_KEYS, Policy, Rules, load_policy, parse_policy

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "RULE_KEYS",
    "SQLITE_PAUSE",
    "TRANSACTION_PHASE",
    "Policy",
    "Progress",
    "PruneReport",
    "Rules",
    "TableReport",
    "load_policy",
    "parse_policy",
    "prune",
    "version_tables",
]
