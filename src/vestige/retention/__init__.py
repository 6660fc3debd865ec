"""Retention: what may go (:mod:`~vestige.retention.policy`, :mod:`~vestige.retention.prunable`)
and the pruner that removes it (:mod:`~vestige.retention.engine`, with its
:mod:`~vestige.retention.lock` and :mod:`~vestige.retention.report`); how big history is
(:mod:`~vestige.retention.stats`, :mod:`~vestige.retention.chart`).
"""

from __future__ import annotations

from vestige.retention.chart import write_chart
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
from vestige.retention.report import ArchiveSummary
from vestige.retention.stats import HistoryStats, TableStats, daily_versions, history_stats

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "RULE_KEYS",
    "SQLITE_PAUSE",
    "TRANSACTION_PHASE",
    "ArchiveSummary",
    "HistoryStats",
    "Policy",
    "Progress",
    "PruneReport",
    "Rules",
    "TableReport",
    "TableStats",
    "daily_versions",
    "history_stats",
    "load_policy",
    "parse_policy",
    "prune",
    "version_tables",
    "write_chart",
]
