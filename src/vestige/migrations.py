"""Alembic integration: the guard that keeps version tables in the comparison.

``migrations/env.py`` calls :func:`check_version_tables` before it runs anything, and
passes :func:`process_revision_directives` to ``context.configure`` so that a custom
``env.py`` that forgets the first call is still covered on autogenerate::

    from vestige.migrations import check_version_tables, process_revision_directives

    check_version_tables(target_metadata)
    context.configure(..., process_revision_directives=process_revision_directives)

Why: Continuum builds the ``*_version`` tables only when the mappers are configured.
An autogenerate run against metadata without them sees every version table in the
database as unknown and proposes ``DROP TABLE`` for each: the whole history gone in
one reviewed-looking revision.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.orm.mapper import _all_registries

from vestige.errors import VersionTablesMissing
from vestige.versioning import versioning_manager

__all__ = [
    "check_version_tables",
    "expected_version_tables",
    "missing_version_tables",
    "process_revision_directives",
]


def _versioned_mappers(metadata: sa.MetaData) -> Iterator[orm.Mapper[Any]]:
    for registry in _all_registries():
        if registry.metadata is not metadata:
            continue
        for mapper in registry.mappers:
            if isinstance(getattr(mapper.class_, "__versioned__", None), dict):
                yield mapper


def _version_table_name(mapper: orm.Mapper[Any]) -> str | None:
    cls = mapper.class_
    options: dict[str, Any] = {**versioning_manager.options, **cls.__versioned__}
    if not options.get("versioning", True) or not options.get("create_tables", True):
        return None
    table = mapper.local_table
    if not isinstance(table, sa.Table):
        return None
    name = str(options["table_name"]) % table.name
    return f"{table.schema}.{name}" if table.schema else name


def expected_version_tables(metadata: sa.MetaData) -> set[str]:
    """The version tables (and ``transaction``) that versioned models of ``metadata`` need.

    Args:
        metadata: The target metadata of a migration environment.

    Returns:
        Table keys as they appear in ``metadata.tables``; empty when nothing is versioned.
    """
    expected = {
        name for mapper in _versioned_mappers(metadata) if (name := _version_table_name(mapper))
    }
    if expected:
        expected.add("transaction")
    return expected


def missing_version_tables(metadata: sa.MetaData) -> list[str]:
    """The expected version tables that ``metadata`` does not hold, sorted."""
    return sorted(expected_version_tables(metadata) - set(metadata.tables))


def check_version_tables(metadata: sa.MetaData | Iterable[sa.MetaData] | None) -> None:
    """Refuse to go on when a versioned model's version table is missing from the metadata.

    Args:
        metadata: The target metadata (or several) of the migration environment.

    Raises:
        VersionTablesMissing: Naming every missing table and the fix.
    """
    if metadata is None:
        return
    collection = [metadata] if isinstance(metadata, sa.MetaData) else list(metadata)
    missing = [name for item in collection for name in missing_version_tables(item)]
    if missing:
        raise VersionTablesMissing(missing)


def process_revision_directives(context: Any, revision: Any, directives: list[Any]) -> None:
    """Alembic hook: run :func:`check_version_tables` before a revision is written."""
    check_version_tables(context.opts.get("target_metadata"))
