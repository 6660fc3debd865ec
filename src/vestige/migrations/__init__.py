"""Alembic integration: the guard, history-aware autogenerate, checks, native triggers.

``env.py`` imports from here (``check_version_tables``, ``comparison_options``, ...);
generated revisions call :mod:`vestige.migrations.native` (``from vestige.migrations
import native``). The pieces: :mod:`~vestige.migrations.guard`,
:mod:`~vestige.migrations.autogenerate`, :mod:`~vestige.migrations.check`,
:mod:`~vestige.migrations.native`, :mod:`~vestige.migrations.lint` and
:mod:`~vestige.migrations.probe`; which version tables the models need is the
catalogue's (:mod:`vestige.catalogue`).
"""

from __future__ import annotations

from vestige.migrations import native
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

__all__ = [
    "check_version_tables",
    "comparison_options",
    "expected_version_tables",
    "missing_version_tables",
    "native",
    "process_revision_directives",
    "rename_column",
    "rename_table",
    "version_tables_by_base",
    "versioned_classes_by_version_table",
]
