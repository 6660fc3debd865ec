"""Alembic integration: the guard, history-aware autogenerate, checks, native triggers.

``env.py`` imports from here (``check_version_tables``, ``comparison_options``, ...);
generated revisions call :mod:`vestige.migrations.native` (``from vestige.migrations
import native``). The pieces: :mod:`~vestige.migrations.guard`,
:mod:`~vestige.migrations.autogenerate`, :mod:`~vestige.migrations.check`,
:mod:`~vestige.migrations.native`, :mod:`~vestige.migrations.lint` and
:mod:`~vestige.migrations.probe`, and :mod:`~vestige.migrations.init` with
:mod:`~vestige.migrations.environment` (``vestige init`` and what the ``env.py`` it writes
calls); which version tables the models need is the catalogue's (:mod:`vestige.catalogue`).
"""

from __future__ import annotations

from vestige.migrations import native
from vestige.migrations.environment import connection_from
from vestige.migrations.guard import (
    check_version_tables,
    comparison_options,
    expected_version_tables,
    missing_version_tables,
    process_revision_directives,
    rename_column,
    rename_table,
    version_tables_by_base,
    versioned_classes_by_version_table,
)
from vestige.migrations.init import InitPlan, init_project, plan_init

__all__ = [
    "InitPlan",
    "check_version_tables",
    "comparison_options",
    "connection_from",
    "expected_version_tables",
    "init_project",
    "missing_version_tables",
    "native",
    "plan_init",
    "process_revision_directives",
    "rename_column",
    "rename_table",
    "version_tables_by_base",
    "versioned_classes_by_version_table",
]
