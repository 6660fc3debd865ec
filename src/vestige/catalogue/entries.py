"""The catalogue's entries: versioned classes, their keys, levels and association tables.

See :mod:`vestige.catalogue`; this module answers once the mappers are configured
(Continuum's version classes exist only then).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy import orm

# Continuum's manager itself, not vestige.versioning's name for it: the catalogue sits
# below the domains (see [tool.importlinter] in pyproject.toml).
from sqlalchemy_continuum import version_class, versioning_manager

from vestige.errors import ModelNotFound

__all__ = [
    "NOT_VERSIONED",
    "AssociationTable",
    "KeyColumn",
    "Level",
    "VersionColumns",
    "VersionedModel",
    "association_key",
    "association_table",
    "association_tables",
    "is_versioned",
    "manager_or_global",
    "record_key",
    "require_versioned",
    "version_columns",
    "versioned_model",
    "versioned_models",
]

NOT_VERSIONED = (
    "{model} is not versioned: give it __versioned__ = {{}} and import the models module "
    "before configure_mappers()"
)


@dataclass(frozen=True)
class KeyColumn:
    """One column of a record's primary key: the mapped attribute and its column."""

    attribute: str
    column: sa.Column[Any]


@dataclass(frozen=True)
class Level:
    """One table a versioned class's records are stored in, and the version table copying it.

    Attributes:
        model: The class whose own table it is (the base, or a joined subclass).
        table: The table.
        version_model: That class's version class.
        version_table: The table's ``*_version`` table.
        key: The table's primary key columns.
        positions: Where each of ``key`` sits in the record's key
            (:attr:`VersionedModel.key`): a joined subclass's key refers to its parent's.
        validity: Whether the class uses the ``validity`` strategy (end pointers).
    """

    model: type[Any]
    table: sa.Table
    version_model: type[Any]
    version_table: sa.Table
    key: tuple[sa.Column[Any], ...]
    positions: tuple[int, ...]
    validity: bool

    def keys(self, records: Iterable[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """The records' keys (in record-key order) as this table's primary key."""
        return [tuple(record[i] for i in self.positions) for record in records]


@dataclass(frozen=True)
class VersionedModel:
    """A versioned class and what Vestige needs to know of it.

    Attributes:
        name: The class name, as users type it (``Package``).
        model: The mapped class.
        version_model: Continuum's version class (``PackageVersion``).
        table: The class's own table (a single-table subclass's is its base's).
        version_table: Its ``*_version`` table.
        root: The topmost mapped class of its inheritance hierarchy (itself if none).
        key: The record's primary key, in mapper order.
        levels: The tables a record is stored in, base first, each with its version
            table: one, except in joined inheritance.
        version_selectable: What the version class is mapped to (the version tables of
            every level, joined).
        root_version_table: The version table of the hierarchy's root: it holds the
            transaction, end transaction and operation type of every version.
        discriminator: The hierarchy's ``polymorphic_on`` expression, if any.
        single: Whether it is a single-table subclass (it shares its base's tables).
        identities: The polymorphic identities of the class and its subclasses.
        names_by_identity: The class name of each polymorphic identity of the hierarchy,
            with ``None`` for the root.
        has_subtables: Whether some subclass stores its records in a table of its own.
    """

    name: str
    model: type[Any]
    version_model: type[Any]
    table: sa.Table
    version_table: sa.Table
    root: type[Any]
    key: tuple[KeyColumn, ...]
    levels: tuple[Level, ...]
    version_selectable: sa.FromClause
    root_version_table: sa.Table
    discriminator: sa.ColumnElement[Any] | None
    single: bool
    identities: tuple[Any, ...]
    names_by_identity: tuple[tuple[Any, str], ...]
    has_subtables: bool

    @property
    def key_attributes(self) -> list[str]:
        """The record key's attribute names."""
        return [part.attribute for part in self.key]

    @property
    def key_columns(self) -> list[sa.Column[Any]]:
        """The record key's columns (of the base table)."""
        return [part.column for part in self.key]

    @property
    def version_discriminator(self) -> sa.Column[Any] | None:
        """The root version table's copy of the discriminator column, if it is a column."""
        if not isinstance(self.discriminator, sa.Column):
            return None
        return self.root_version_table.c.get(self.discriminator.name)


@dataclass(frozen=True)
class AssociationTable:
    """A many-to-many ``secondary`` table Continuum versions, and its version table.

    Attributes:
        table: The association table.
        version_table: Its ``*_version`` table.
        key: The column names that identify a row: its primary key, or every column.
    """

    table: sa.Table
    version_table: sa.Table
    key: tuple[str, ...]


@dataclass(frozen=True)
class VersionColumns:
    """The names of the columns Continuum adds to every version table."""

    transaction_id: str
    end_transaction_id: str
    operation_type: str


def manager_or_global(manager: Any) -> Any:
    """``manager``, or Continuum's global one when it is ``None``."""
    return versioning_manager if manager is None else manager


def record_key(model: type[Any]) -> tuple[KeyColumn, ...]:
    """The primary key of any mapped class, versioned or not, in mapper order."""
    mapper: orm.Mapper[Any] = sa.inspect(model)
    return tuple(
        KeyColumn(mapper.get_property_by_column(column).key, cast("sa.Column[Any]", column))
        for column in mapper.primary_key
    )


def association_key(table: sa.Table) -> tuple[str, ...]:
    """What identifies an association table's row: its primary key, or every column."""
    return tuple(c.name for c in table.primary_key) or tuple(c.name for c in table.c)


def version_columns(manager: Any = None, model: type[Any] | None = None) -> VersionColumns:
    """The transaction, end transaction and operation type column names in use.

    Those of ``model`` when given (a class's ``__versioned__`` options may name them),
    else the manager's.
    """
    manager = manager_or_global(manager)

    def option(name: str) -> str:
        return str(manager.options[name] if model is None else manager.option(model, name))

    return VersionColumns(
        transaction_id=option("transaction_column_name"),
        end_transaction_id=option("end_transaction_column_name"),
        operation_type=option("operation_type_column_name"),
    )


def is_versioned(model: type[Any], manager: Any = None) -> bool:
    """Whether Continuum versions the class (cheap: no entry is built)."""
    return model in manager_or_global(manager).version_class_map


def versioned_model(model: type[Any], manager: Any = None) -> VersionedModel | None:
    """The catalogue's entry for a class, or ``None`` if it is not versioned."""
    manager = manager_or_global(manager)
    if not is_versioned(model, manager):
        return None
    mapper: orm.Mapper[Any] = sa.inspect(model)
    if mapper.class_ is not model or not isinstance(mapper.local_table, sa.Table):
        return None
    version_model = version_class(model)
    version_mapper: orm.Mapper[Any] = sa.inspect(version_model)
    root = mapper.base_mapper
    hierarchy = root.self_and_descendants
    key = record_key(model)
    return VersionedModel(
        name=model.__name__,
        model=model,
        version_model=version_model,
        table=mapper.local_table,
        version_table=cast(sa.Table, version_mapper.local_table),
        root=root.class_,
        key=key,
        levels=tuple(_levels(manager, mapper, [part.column for part in key])),
        version_selectable=version_mapper.persist_selectable,
        root_version_table=cast(sa.Table, version_mapper.base_mapper.local_table),
        discriminator=mapper.polymorphic_on,
        single=bool(mapper.single) and mapper.inherits is not None,
        identities=tuple(m.polymorphic_identity for m in mapper.self_and_descendants),
        names_by_identity=(
            (None, root.class_.__name__),
            *(
                (m.polymorphic_identity, m.class_.__name__)
                for m in hierarchy
                if m.polymorphic_identity is not None
            ),
        ),
        has_subtables=any(
            m.local_table is not mapper.local_table for m in mapper.self_and_descendants
        ),
    )


def require_versioned(model: type[Any], manager: Any = None) -> VersionedModel:
    """The catalogue's entry for a class that must be versioned.

    Raises:
        ModelNotFound: The class is not versioned.
    """
    entry = versioned_model(model, manager)
    if entry is None:
        raise ModelNotFound(NOT_VERSIONED.format(model=model.__name__))
    return entry


def versioned_models(manager: Any = None) -> dict[str, VersionedModel]:
    """Every configured versioned class, by class name, sorted by name."""
    manager = manager_or_global(manager)
    found = {}
    for model in list(manager.version_class_map):
        entry = versioned_model(model, manager)
        if entry is not None:
            found[entry.name] = entry
    return dict(sorted(found.items()))


def association_tables(manager: Any = None) -> list[AssociationTable]:
    """The many-to-many association tables Continuum versions, sorted by name."""
    manager = manager_or_global(manager)
    found = []
    for table in manager.association_tables:
        version_table = _version_table_of(table)
        if version_table is not None:
            found.append(AssociationTable(table, version_table, association_key(table)))
    return sorted(found, key=lambda association: association.table.fullname)


def association_table(table: sa.Table, manager: Any = None) -> AssociationTable | None:
    """The catalogue's entry for one association table, or ``None`` if it is not versioned."""
    return next((a for a in association_tables(manager) if a.table is table), None)


# --- how the facts are found ---------------------------------------------------------


def _levels(
    manager: Any, mapper: orm.Mapper[Any], record_columns: list[sa.Column[Any]]
) -> Iterator[Level]:
    """The versioned tables ``mapper``'s records are stored in, base first."""
    seen: set[str] = set()
    for owner in reversed(list(mapper.iterate_to_root())):
        table = owner.local_table
        if not isinstance(table, sa.Table) or table.fullname in seen:
            continue
        if owner.class_ not in manager.version_class_map:
            continue
        seen.add(table.fullname)
        version_model = version_class(owner.class_)
        yield Level(
            model=owner.class_,
            table=table,
            version_model=version_model,
            version_table=version_model.__table__,
            key=tuple(table.primary_key),
            positions=tuple(
                _key_position(column, i, record_columns)
                for i, column in enumerate(table.primary_key)
            ),
            validity=manager.option(owner.class_, "strategy") == "validity",
        )


def _key_position(column: sa.Column[Any], index: int, record_columns: list[Any]) -> int:
    """Which column of the record key ``column`` holds: the one its foreign keys lead to.

    A joined subclass's key refers to its parent's (``invoice.id -> document.id``);
    without such a chain, the column at the same place.
    """
    found: sa.Column[Any] = column
    for _ in range(len(record_columns) + 16):
        for position, key_column in enumerate(record_columns):
            if found is key_column:
                return position
        referred = [fk.column for fk in found.foreign_keys]
        if len(referred) != 1:
            break
        found = referred[0]
    return index


def _version_table_of(table: sa.Table) -> sa.Table | None:
    """The ``*_version`` table beside ``table`` in its metadata, as Continuum names it."""
    schema = table.schema or table.metadata.schema
    name = f"{table.name}_version"
    return table.metadata.tables.get(f"{schema}.{name}" if schema else name)
