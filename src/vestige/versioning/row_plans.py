"""Row plans: how versions are written as plain rows, and old ones closed.

The one way Vestige writes versions itself, for the unit of work
(:mod:`vestige.versioning.unit_of_work`) and bulk statements
(:mod:`vestige.versioning.bulk_versions`) alike:

- :class:`~vestige.versioning.copies.CopyPlan` copies records from a table into its
  version table (``INSERT ... SELECT``, sending keys rather than values), and refreshes
  a version written earlier in the same transaction;
- :class:`CloseTarget` closes the previous versions, one UPDATE per version table;
- :class:`RowPlan` is a versioned class's plan for the unit of work: its copy, its close,
  and its version rows built from objects where the database cannot copy them;
- :func:`level_plans` gives bulk statements the copy and close of each table a record is
  stored in (:class:`~vestige.catalogue.Level`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy_continuum._compat import get_primary_keys
from sqlalchemy_continuum.utils import versioned_column_properties

from vestige.catalogue import Level, version_columns, versioned_model
from vestige.versioning.copies import CopyPlan
from vestige.versioning.keys import KeyMatch, key_batches, key_getter

__all__ = [
    "CloseTarget",
    "CopyPlan",
    "RowPlan",
    "close_statements",
    "level_plans",
    "manager_cache",
]


def manager_cache(manager: Any, name: str) -> dict[Any, Any]:
    """A dict kept on the manager: what is computed once per class, for every flush."""
    cache: dict[Any, Any] | None = getattr(manager, name, None)
    if cache is None:
        cache = {}
        setattr(manager, name, cache)
    return cache


class CloseTarget:
    """One version table to close previous versions in, and the records to close."""

    __slots__ = (
        "_statements",
        "end_column",
        "keys",
        "pk_attributes",
        "pk_columns",
        "table",
        "tx_column",
    )

    def __init__(self, version_cls: type, tx: str, end_tx: str) -> None:
        table: sa.Table = version_cls.__table__  # type: ignore[attr-defined]
        primary_key = {
            key: column for key, column in get_primary_keys(version_cls).items() if key != tx
        }
        self.table = table
        self.pk_attributes = list(primary_key)
        self.pk_columns = [
            table.c[column.name] if column.name in table.c else table.c[key]
            for key, column in primary_key.items()
        ]
        self.tx_column = table.c[tx]
        self.end_column = table.c[end_tx]
        self.keys: set[tuple[Any, ...]] = set()
        self._statements: dict[str, tuple[sa.Update, KeyMatch]] = {}

    @classmethod
    def like(cls, other: CloseTarget) -> CloseTarget:
        """An empty target for the same table."""
        target = cls.__new__(cls)
        target.table, target.pk_attributes = other.table, other.pk_attributes
        target.pk_columns, target.tx_column = other.pk_columns, other.tx_column
        target.end_column, target.keys = other.end_column, set()
        target._statements = other._statements
        return target

    def statement(self, dialect: str) -> tuple[sa.Update, KeyMatch]:
        """The close's UPDATE on ``dialect``, built once, and how it takes its keys."""
        found = self._statements.get(dialect)
        if found is None:
            found = self._statements[dialect] = _close_statement(self, dialect)
        return found


class RowPlan:
    """How to write a version of one versioned class as a plain row (no ORM object)."""

    __slots__ = (
        "attributes",
        "close",
        "close_by_record_key",
        "columns",
        "copy",
        "key_attributes",
        "key_is_identity",
        "key_of",
        "operation_column",
        "table",
        "tx_column",
    )

    def __init__(self, manager: Any, cls: type, version_cls: type) -> None:
        mapper: orm.Mapper[Any] = sa.inspect(version_cls)
        self.table = cast(sa.Table, mapper.local_table)
        properties = [prop.key for prop in versioned_column_properties(cls)]
        self.attributes = properties
        self.columns = [mapper.get_property(key).columns[0].key for key in properties]
        self.tx_column = self.table.c[manager.option(cls, "transaction_column_name")].key
        self.operation_column = self.table.c["operation_type"].key
        by_column = dict(zip(self.columns, self.attributes, strict=True))
        self.key_attributes = [
            by_column[c.key] for c in self.table.primary_key if c.key != self.tx_column
        ]
        # Inserted and updated rows can be copied by the database from the base table
        # (INSERT ... SELECT), sending keys instead of values; not with inheritance,
        # where the base table holds other classes' rows and columns too.
        entry = versioned_model(cls, manager)
        self.copy: CopyPlan | None = None
        if entry is not None and entry.model is entry.root and entry.discriminator is None:
            base_columns = {c.name: c for c in entry.table.c}
            if all(self.table.c[key].name in base_columns for key in self.columns):
                self.copy = CopyPlan(
                    self.table,
                    entry.table,
                    [(key, base_columns[self.table.c[key].name]) for key in self.columns],
                    [base_columns[self.table.c[key].name] for key in self._key_columns()],
                    self.tx_column,
                    self.operation_column,
                )
        self.close: CloseTarget | None = None
        if manager.option(cls, "strategy") == "validity":
            self.close = CloseTarget(
                version_cls,
                manager.option(cls, "transaction_column_name"),
                manager.option(cls, "end_transaction_column_name"),
            )
        self.key_of = key_getter(self.key_attributes)
        self.key_is_identity = list(get_primary_keys(cls)) == self.key_attributes
        # The close target keys records as the version table does; mostly the same key.
        self.close_by_record_key = (
            self.close is not None and self.close.pk_attributes == self.key_attributes
        )

    @classmethod
    def for_class(cls, manager: Any, parent_cls: type) -> RowPlan | None:
        """The plan for ``parent_cls``, or ``None`` when its versions need ORM objects."""
        entry = versioned_model(parent_cls, manager)
        if entry is None or len(entry.levels) != 1:
            return None  # joined inheritance: one version spans several tables
        try:
            return cls(manager, parent_cls, entry.version_model)
        except (KeyError, sa.exc.InvalidRequestError):
            return None

    def row(self, target: Any, operation_type: int, tx_id: int) -> dict[str, Any]:
        """The version row of ``target`` as it is now."""
        row: dict[str, Any] = {self.tx_column: tx_id, self.operation_column: operation_type}
        for attribute, column in zip(self.attributes, self.columns, strict=True):
            try:
                row[column] = getattr(target, attribute)
            except orm.exc.ObjectDeletedError:
                row[column] = None
        return row

    def _key_columns(self) -> list[str]:
        return [c.key for c in self.table.primary_key if c.key != self.tx_column]


def level_plans(manager: Any, level: Level) -> tuple[CopyPlan, CloseTarget | None]:
    """The copy and, under the ``validity`` strategy, the close of one table's versions.

    Built once per table and kept on the manager; a bulk statement copies each table a
    record is stored in (one per level of joined inheritance).
    """
    plans: dict[sa.Table, tuple[CopyPlan, CloseTarget | None]] = manager_cache(
        manager, "_vestige_level_plans"
    )
    found = plans.get(level.table)
    if found is None:
        close = None
        if level.validity:
            names = version_columns(manager, level.model)
            close = CloseTarget(level.version_model, names.transaction_id, names.end_transaction_id)
        found = plans[level.table] = (CopyPlan.for_level(level, manager), close)
    return found


def close_statements(
    target: CloseTarget,
    tx_id: int,
    dialect: str,
    encoded: list[tuple[list[Any], str]] | None = None,
) -> Iterator[tuple[sa.Update, dict[str, Any]]]:
    """The UPDATEs closing the open versions of ``target.keys`` written before ``tx_id``.

    Pairs of a statement, built once per target and dialect, and its parameters
    (``encoded``: see :meth:`KeyMatch.params`). "Before" means committed before, not a
    smaller id: Continuum numbers a transaction at its first flush, so a concurrent
    writer with a larger id can commit a version of the same record first. This
    transaction holds the record's row lock when it gets here, so every other open
    version is closed by it and the record keeps exactly one open version (H1); stock
    closes only the largest smaller id and leaves two open.
    """
    statement, match = target.statement(dialect)
    for batch in key_batches(target.keys, match, dialect):
        params = match.params(batch, encoded)
        params["vestige_tx"] = tx_id
        yield statement, params


def _close_statement(target: CloseTarget, dialect: str) -> tuple[sa.Update, KeyMatch]:
    table, pk = target.table, target.pk_columns
    tx_id = sa.bindparam("vestige_tx", type_=target.tx_column.type)
    match = KeyMatch(pk, dialect)
    # On SQLite, "+ 0" keeps the planner off the end-transaction index: without ANALYZE
    # statistics it would walk every open version instead of the few keys asked for.
    end = target.end_column + 0 if dialect == "sqlite" else target.end_column
    update = table.update().values({target.end_column.key: tx_id})
    if match.on is not None:  # UPDATE ... FROM json_each(...): see KeyMatch
        return update.where(end.is_(None), target.tx_column != tx_id, match.on), match
    open_before = sa.and_(end.is_(None), target.tx_column != tx_id, match.clause)
    if dialect != "postgresql":
        return update.where(open_before), match
    # Lock in primary-key order, then update what was locked: concurrent flushes over
    # overlapping records take their locks in the same order and cannot deadlock here.
    locked = (
        sa.select(*pk, target.tx_column)
        .where(open_before)
        .order_by(*pk, target.tx_column)
        .with_for_update()
        .subquery("locked")
    )
    update = update.where(
        *(column == locked.c[column.key] for column in pk),
        target.tx_column == locked.c[target.tx_column.key],
    )
    return update, match
