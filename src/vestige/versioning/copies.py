"""Copy plans: versions the database copies from a table, ``INSERT INTO <version> SELECT``.

Part of the row plans (:mod:`vestige.versioning.row_plans`): the unit of work copies
inserted and updated records with them, and bulk statements copy every table a record
is stored in, refresh a version written earlier in the same transaction, and ask which
records have one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy_continuum.operation import Operation

from vestige.catalogue import Level, version_columns
from vestige.versioning.keys import KeyMatch, key_batches

__all__ = ["CopyPlan", "Statements"]

Statements = Iterator[tuple[Any, dict[str, Any]]]
"""(statement, parameters) pairs to execute, each statement built once."""


class CopyPlan:
    """Versions the database copies from a table: ``INSERT INTO <version> SELECT ...``.

    The records are named by their keys, in the order of :attr:`key`; statements are
    built once per dialect and kind, and take the keys as one parameter where the
    dialect allows (:class:`~vestige.versioning.keys.KeyMatch`).

    Attributes:
        table: The version table.
        source: The table copied from.
        columns: Pairs of a version column's key and the source column copied into it.
        key: The source's key columns.
        version_key: The version table's copies of them.
    """

    __slots__ = (
        "_statements",
        "columns",
        "end_column",
        "key",
        "operation_column",
        "source",
        "table",
        "tx_column",
        "version_key",
    )

    def __init__(
        self,
        table: sa.Table,
        source: sa.Table,
        columns: Sequence[tuple[str, sa.ColumnElement[Any]]],
        key: Sequence[sa.ColumnElement[Any]],
        tx_column: str,
        operation_column: str,
        end_column: str | None = None,
    ) -> None:
        self.table, self.source, self.columns = table, source, list(columns)
        self.end_column = end_column
        self.key = list(key)
        by_name = {c.name: c for c in table.c}
        self.version_key = [by_name[cast("sa.Column[Any]", c).name] for c in self.key]
        self.tx_column, self.operation_column = tx_column, operation_column
        self._statements: dict[tuple[str, str, int], tuple[Any, KeyMatch]] = {}

    @classmethod
    def for_level(cls, level: Level, manager: Any = None) -> CopyPlan:
        """Every column of ``level.table`` its version table has (bulk statements)."""
        names = version_columns(manager, level.model)
        tx, end = names.transaction_id, names.end_transaction_id
        operation = names.operation_type
        version = level.version_table
        source = {c.name: c for c in level.table.c}
        columns = [
            (c.key, source[c.name])
            for c in version.c
            if c.name in source and c.name not in (tx, end, operation)
        ]
        return cls(
            version,
            level.table,
            columns,
            level.key,
            version.c[tx].key,
            version.c[operation].key,
            version.c[end].key if level.validity else None,
        )

    def copy_statements(
        self,
        keys: Iterable[tuple[Any, ...]],
        operation_type: int,
        tx_id: int,
        dialect: str,
        encoded: list[tuple[list[Any], str]] | None = None,
        *,
        upsert: bool = False,
    ) -> Statements:
        """``INSERT INTO <version> SELECT ... FROM <source>`` for these records as they are.

        ``upsert``: an insert of a record that has an open version other than a delete
        (a bulk INSERT ... ON CONFLICT that updated it) is written as an update.
        ``encoded``: see :meth:`KeyMatch.params`.
        """
        kind = "upsert" if upsert else "copy"
        statement, match = self._statement(kind, dialect, 0)
        for batch in key_batches(keys, match, dialect):
            params = match.params(batch, encoded)
            params["vestige_tx"], params["vestige_operation"] = tx_id, operation_type
            yield statement, params

    def refresh_statements(
        self, keys: Iterable[tuple[Any, ...]], operation_type: int, tx_id: int, dialect: str
    ) -> Statements:
        """UPDATEs copying these records again into their versions of transaction ``tx_id``.

        A record written twice in one transaction keeps one version. Deleted then, its
        version says so; inserted again after a delete, it is an update (as Continuum's
        ``Operations.add_insert`` records it).
        """
        statement, match = self._statement("refresh", dialect, operation_type)
        for batch in key_batches(keys, match, dialect):
            params = match.params(batch)
            params["vestige_tx"] = tx_id
            yield statement, params

    def written(
        self, connection: sa.Connection, keys: Iterable[tuple[Any, ...]], tx_id: int
    ) -> set[tuple[Any, ...]]:
        """Which of these records already have a version in transaction ``tx_id``."""
        dialect = connection.dialect.name
        statement, match = self._statement("written", dialect, 0)
        found: set[tuple[Any, ...]] = set()
        for batch in key_batches(keys, match, dialect):
            params = match.params(batch)
            params["vestige_tx"] = tx_id
            found.update(tuple(row) for row in connection.execute(statement, params))
        return found

    def _statement(self, kind: str, dialect: str, operation_type: int) -> tuple[Any, KeyMatch]:
        found = self._statements.get((kind, dialect, operation_type))
        if found is None:
            build = {"refresh": self._refresh, "written": self._written}.get(kind, self._copy)
            found = build(kind, dialect, operation_type)
            self._statements[(kind, dialect, operation_type)] = found
        return found

    def _copy(self, kind: str, dialect: str, _: int) -> tuple[sa.Insert, KeyMatch]:
        match = KeyMatch(self.key, dialect)
        tx = self.table.c[self.tx_column]
        operation: Any = sa.bindparam(
            "vestige_operation", type_=self.table.c[self.operation_column].type
        )
        if kind == "upsert":
            operation = sa.case((self._live(), sa.literal(Operation.UPDATE)), else_=operation)
        names = [name for name, _ in self.columns] + [self.tx_column, self.operation_column]
        rows = sa.select(
            *(column for _, column in self.columns),
            sa.bindparam("vestige_tx", type_=tx.type),
            operation,
        )
        if match.keys_table is not None and match.on is not None:
            # The keys are distinct (one operation per record): the join copies each once.
            rows = rows.select_from(match.keys_table.join(self.source, match.on))
        else:
            rows = rows.where(match.clause)
        return self.table.insert().from_select(names, rows), match

    def _live(self) -> sa.Exists:
        """Whether the record has an open version, before this transaction, that is no delete."""
        assert self.end_column is not None
        version, tx = self.table, self.table.c[self.tx_column]
        end = version.c[self.end_column]
        return (
            sa.select(sa.literal(1))
            .where(
                *(v == c for v, c in zip(self.version_key, self.key, strict=True)),
                end.is_(None),
                tx != sa.bindparam("vestige_tx", type_=tx.type),
                version.c[self.operation_column] != Operation.DELETE,
            )
            .exists()
        )

    def _refresh(self, _: str, dialect: str, operation_type: int) -> tuple[sa.Update, KeyMatch]:
        match = KeyMatch(self.key, dialect)
        version, tx = self.table, self.table.c[self.tx_column]
        values: dict[Any, Any] = {version.c[name]: column for name, column in self.columns}
        operation = version.c[self.operation_column]
        if operation_type == Operation.DELETE:
            values[operation] = sa.literal(operation_type)
        elif operation_type == Operation.INSERT:
            deleted = operation == Operation.DELETE
            values[operation] = sa.case((deleted, sa.literal(Operation.UPDATE)), else_=operation)
        statement = (
            version.update()
            .where(
                tx == sa.bindparam("vestige_tx", type_=tx.type),
                *(v == c for v, c in zip(self.version_key, self.key, strict=True)),
                match.clause,
            )
            .values(values)
        )
        return statement, match

    def _written(self, _: str, dialect: str, __: int) -> tuple[sa.Select[Any], KeyMatch]:
        match = KeyMatch(self.version_key, dialect)
        tx = self.table.c[self.tx_column]
        statement = sa.select(*self.version_key).where(
            tx == sa.bindparam("vestige_tx", type_=tx.type), match.clause
        )
        return statement, match
