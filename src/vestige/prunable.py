"""The prunable rows of a version table, as SQL: rules in, a SELECT out, no rows loaded.

For every version of a record (newest first: ``rn`` = 1, 2, ...) the query works out

* ``superseded_at``: when the next newer version was written, i.e. when this one was
  superseded. For entity tables this is the issue time of the end transaction (H2 makes
  the next version's transaction the end transaction); for many-to-many association
  tables, whose ``end_transaction_id`` Continuum never fills, it is the only definition;
* whether the record is deleted: its newest version is a delete (``operation_type = 2``).

A version is *eligible* when its record was deleted more than ``deleted_keep_days`` ago
(R5: the whole chain, tombstone included), or when it is superseded, not among the
``keep_versions`` newest (R3) and was superseded more than ``keep_days`` ago (R4). Only
the eligible versions older than the record's oldest ineligible version are prunable:
a prefix of the chain (R2). The newest version of a record that is not deleted is never
eligible (R1).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from vestige.policy import Rules

__all__ = ["DELETE_OPERATION", "VersionTable", "classified", "prunable_keys"]

DELETE_OPERATION = 2


@dataclass(frozen=True)
class VersionTable:
    """A version table and the rules that apply to it.

    Attributes:
        table: The ``*_version`` table (entity or many-to-many association).
        key: The columns identifying a record (the primary key without the transaction).
        transaction_id: The column of the transaction that wrote a version.
        end_transaction_id: The column of the transaction that superseded it.
        operation_type: The column holding 0 insert, 1 update, 2 delete.
        rules: The retention rules for this table.
        association: Whether it versions a many-to-many association table.
        label: The model name (or the table name for association tables).
    """

    table: sa.Table
    key: tuple[sa.Column[Any], ...]
    transaction_id: sa.Column[Any]
    end_transaction_id: sa.Column[Any]
    operation_type: sa.Column[Any]
    rules: Rules
    association: bool
    label: str

    @property
    def name(self) -> str:
        """The table name as reported."""
        return self.table.name


def classified(
    target: VersionTable,
    transactions: sa.Table,
    now: datetime,
    row_id: sa.ColumnElement[Any] | None = None,
) -> sa.Subquery:
    """Every row of ``target`` with its key, transaction, issue time and ``prune`` flag.

    Args:
        target: The version table and its rules.
        transactions: Continuum's ``transaction`` table.
        now: The time the rules count days back from (naive UTC, like ``issued_at``).
        row_id: A physical row address of ``target`` to carry along (PostgreSQL's ctid).

    Returns:
        A subquery with the key columns, ``transaction_id``, ``issued_at`` (of the
        version's own transaction), ``prune`` (true for the rows to delete) and, if
        asked for, ``row_id``.
    """
    carried = [] if row_id is None else [row_id.label("row_id")]
    rules = target.rules
    tx = target.transaction_id
    issued_type = transactions.c.issued_at.type
    own = transactions.alias("own_tx")
    # every window shares one ordering (record, transaction ascending), the order of the
    # primary key: one sort (or an index scan) serves them all and the numbering after
    oldest_first: dict[str, Any] = {"partition_by": target.key, "order_by": tx}
    whole_chain: dict[str, Any] = {**oldest_first, "rows": (None, None)}

    ranked = (
        sa.select(
            *target.key,
            tx.label("transaction_id"),
            target.end_transaction_id.label("end_transaction_id"),
            own.c.issued_at.label("issued_at"),
            *carried,
            # 1 for the newest version, 2 for the one before, ...
            sa.func.count().over(**oldest_first, rows=(0, None)).label("rn"),
            sa.func.lead(own.c.issued_at, type_=issued_type)
            .over(**oldest_first)
            .label("superseded_at"),
            sa.func.last_value(target.operation_type, type_=sa.SmallInteger)
            .over(**whole_chain)
            .label("last_operation"),
            sa.func.last_value(own.c.issued_at, type_=issued_type)
            .over(**whole_chain)
            .label("last_issued_at"),
        )
        .select_from(target.table.outerjoin(own, own.c.id == tx))
        .subquery("ranked")
    )

    def cutoff(days: int, name: str) -> sa.BindParameter[Any]:
        return sa.bindparam(name, now - timedelta(days=days), type_=issued_type)

    ordinary: list[sa.ColumnElement[bool]] = []
    if rules.prunes_superseded:
        ordinary.append(ranked.c.rn > max(1, rules.keep_versions or 0))
        if not target.association:
            ordinary.append(ranked.c.end_transaction_id.is_not(None))
        if rules.keep_days is not None:
            ordinary.append(ranked.c.superseded_at < cutoff(rules.keep_days, "keep_cutoff"))
    whole: list[sa.ColumnElement[bool]] = []
    if rules.deleted_keep_days is not None:
        whole = [
            ranked.c.last_operation == DELETE_OPERATION,
            ranked.c.last_issued_at < cutoff(rules.deleted_keep_days, "deleted_cutoff"),
        ]
    # CASE ... ELSE 0: an unknown (NULL) comparison leaves the version ineligible
    whens = [(sa.and_(*rule), 1) for rule in (whole, ordinary) if rule]
    eligible = sa.case(*whens, else_=0) if whens else sa.literal(0)
    key = [ranked.c[column.name] for column in target.key]

    flagged = sa.select(
        *key,
        ranked.c.transaction_id,
        ranked.c.issued_at,
        ranked.c.end_transaction_id,
        *(ranked.c.row_id for _ in carried),
        sa.func.min(sa.case((eligible == 0, ranked.c.transaction_id)))
        .over(partition_by=key)
        .label("keep_from"),
    ).subquery("flagged")

    return sa.select(
        *(flagged.c[column.name] for column in target.key),
        flagged.c.transaction_id,
        flagged.c.end_transaction_id,
        flagged.c.issued_at,
        *(flagged.c.row_id for _ in carried),
        sa.or_(flagged.c.keep_from.is_(None), flagged.c.transaction_id < flagged.c.keep_from).label(
            "prune"
        ),
    ).subquery("classified")


def prunable_keys(
    target: VersionTable,
    transactions: sa.Table,
    now: datetime,
    row_id: sa.ColumnElement[Any] | None = None,
) -> sa.Select[Any]:
    """The key and transaction (and ``row_id``) of every prunable row, oldest first."""
    rows = classified(target, transactions, now, row_id)
    columns = [rows.c[column.name] for column in target.key]
    carried = [] if row_id is None else [rows.c.row_id]
    return (
        sa.select(*columns, rows.c.transaction_id, *carried)
        .where(rows.c.prune)
        .order_by(*columns, rows.c.transaction_id)
    )
