"""Which version tables a metadata's versioned models need: the guard's and autogenerate's facts.

Kept apart from :mod:`vestige.migrations.guard` so that the guard can call
:mod:`vestige.migrations.autogenerate`, which needs the same facts, without an import cycle.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.orm.mapper import _all_registries

from vestige.versioning import versioning_manager

__all__ = [
    "expected_version_tables",
    "missing_version_tables",
    "version_tables_by_base",
    "versioned_classes_by_version_table",
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


def _association_version_tables(metadata: sa.MetaData, mapper: orm.Mapper[Any]) -> Iterator[str]:
    """The version tables Continuum adds for the model's many-to-many ``secondary`` tables."""
    cls = mapper.class_
    options: dict[str, Any] = {**versioning_manager.options, **cls.__versioned__}
    # mapper._props, not mapper.relationships: reading those would configure the mappers.
    for key, prop in mapper._props.items():
        if not isinstance(prop, orm.RelationshipProperty) or prop.viewonly:
            continue
        if key in options.get("exclude", ()) and key not in options.get("include", ()):
            continue
        arg = prop._init_args.secondary
        # resolved once mappers are configured; the argument as declared before that
        # (SQLAlchemy 2.1 spells this arg.effective_value(), 2.0 has no such method)
        secondary = arg.resolved if arg.resolved is not None else arg.argument
        if isinstance(secondary, str):
            secondary = metadata.tables.get(secondary)
        elif callable(secondary):
            secondary = secondary()
        if isinstance(secondary, sa.Table):
            name = str(options["table_name"]) % secondary.name
            yield f"{secondary.schema}.{name}" if secondary.schema else name


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
    for mapper in _versioned_mappers(metadata):
        expected.update(_association_version_tables(metadata, mapper))
    if expected:
        expected.add("transaction")
    return expected


def versioned_classes_by_version_table(metadata: sa.MetaData) -> dict[str, tuple[str, str]]:
    """``{version table: (model class name, base table)}`` for the models of ``metadata``."""
    found: dict[str, tuple[str, str]] = {}
    for mapper in _versioned_mappers(metadata):
        name = _version_table_name(mapper)
        if name and isinstance(mapper.local_table, sa.Table):
            found[name] = (mapper.class_.__name__, mapper.local_table.name)
    return found


def version_tables_by_base(metadata: sa.MetaData) -> dict[str, str]:
    """``{base table: version table}`` for the versioned models of ``metadata``."""
    return {
        base: version for version, (_, base) in versioned_classes_by_version_table(metadata).items()
    }


def missing_version_tables(metadata: sa.MetaData) -> list[str]:
    """The expected version tables that ``metadata`` does not hold, sorted."""
    return sorted(expected_version_tables(metadata) - set(metadata.tables))
