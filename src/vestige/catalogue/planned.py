"""The catalogue's plan: which version tables the declarations call for.

Read from the declarations and the ``__versioned__`` options without configuring the
mappers (see :mod:`vestige.catalogue`): the migration guard asks before Continuum has
built anything.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.orm.mapper import _all_registries

from vestige.catalogue.entries import manager_or_global

__all__ = ["PlannedVersionTable", "planned_version_tables", "version_tables_by_base"]


@dataclass(frozen=True)
class PlannedVersionTable:
    """A version table the declarations call for, before the mappers are configured.

    Attributes:
        name: Its key in the metadata's ``tables`` (schema-qualified if it has a schema).
        base: The name of the table it versions.
        model: The class name it versions; ``None`` for a many-to-many association table.
    """

    name: str
    base: str
    model: str | None


def planned_version_tables(
    metadata: sa.MetaData, manager: Any = None
) -> dict[str, PlannedVersionTable]:
    """The version tables the versioned classes of ``metadata`` call for, by table key.

    Read from the declarations and the ``__versioned__`` options without configuring
    the mappers: the migration guard asks before Continuum has built anything.
    """
    options = manager_or_global(manager).options
    found: dict[str, PlannedVersionTable] = {}
    for mapper in _declared_versioned(metadata):
        cls = mapper.class_
        merged: dict[str, Any] = {**options, **cls.__versioned__}
        table = mapper.local_table
        if (
            merged.get("versioning", True)
            and merged.get("create_tables", True)
            and isinstance(table, sa.Table)
        ):
            name = _table_key(table, merged)
            planned = PlannedVersionTable(name, table.name, cls.__name__)
            # A single-table subclass shares its base's table: the base names it.
            if mapper.single:
                found.setdefault(name, planned)
            else:
                found[name] = planned
        for secondary in _secondaries(metadata, mapper, merged):
            name = _table_key(secondary, merged)
            found.setdefault(name, PlannedVersionTable(name, secondary.name, None))
    return found


def version_tables_by_base(metadata: sa.MetaData) -> dict[str, str]:
    """``{base table: version table}`` for the versioned classes of ``metadata``."""
    return {
        planned.base: name
        for name, planned in planned_version_tables(metadata).items()
        if planned.model is not None
    }


# --- how the plan is found ----------------------------------------------------------


def _table_key(table: sa.Table, options: dict[str, Any]) -> str:
    name = str(options["table_name"]) % table.name
    return f"{table.schema}.{name}" if table.schema else name


def _declared_versioned(metadata: sa.MetaData) -> Iterator[orm.Mapper[Any]]:
    for registry in _all_registries():
        if registry.metadata is not metadata:
            continue
        for mapper in registry.mappers:
            if isinstance(getattr(mapper.class_, "__versioned__", None), dict):
                yield mapper


def _secondaries(
    metadata: sa.MetaData, mapper: orm.Mapper[Any], options: dict[str, Any]
) -> Iterator[sa.Table]:
    """The model's many-to-many ``secondary`` tables, which Continuum versions too."""
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
            yield secondary
