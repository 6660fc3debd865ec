"""The one catalogue of versioned models: the facts every domain reads about them.

Which classes are versioned, their version classes and tables, the columns that key
their records, how inheritance spreads a record over tables (the hierarchy's root, one
table per level of joined inheritance, the discriminator of single-table inheritance)
and the many-to-many association tables Continuum versions beside them. They are worked
out here, from SQLAlchemy's mappers and Continuum's manager, and nowhere else: history,
migrations, retention and versioning ask.

Version classes exist only once the mappers are configured (``configure_mappers()``);
:func:`planned_version_tables` answers from the declarations alone, for the migration
guard, which runs before anything configures them.
"""

from __future__ import annotations

from vestige.catalogue.entries import (
    NOT_VERSIONED,
    AssociationTable,
    KeyColumn,
    Level,
    VersionColumns,
    VersionedModel,
    association_key,
    association_table,
    association_tables,
    is_versioned,
    record_key,
    require_versioned,
    version_columns,
    versioned_model,
    versioned_models,
)
from vestige.catalogue.planned import (
    PlannedVersionTable,
    planned_version_tables,
    version_tables_by_base,
)

__all__ = [
    "NOT_VERSIONED",
    "AssociationTable",
    "KeyColumn",
    "Level",
    "PlannedVersionTable",
    "VersionColumns",
    "VersionedModel",
    "association_key",
    "association_table",
    "association_tables",
    "is_versioned",
    "planned_version_tables",
    "record_key",
    "require_versioned",
    "version_columns",
    "version_tables_by_base",
    "versioned_model",
    "versioned_models",
]
