"""The prunable rows of a version table, as SQL: rules in, a SELECT out, no rows loaded.

A record's versions are ordered by **commit order**: the chain the ``end_transaction_id``
pointers draw (H2). Continuum numbers a transaction at its first flush, so two writers
can commit out of id order, and a version may end at a transaction with a *smaller* id
than its own. For every version the query works out

* ``rn``: its place counted from the newest version in commit order (1 for the newest).
  Where every closed version of a record ends at a larger id than its own, commit order
  is id order and ``rn`` is a window count. Otherwise (the record is *disordered*) the
  chain is walked from its first version along the end pointers, one primary key look-up
  a step (a recursive query over the disordered records only). A disordered record whose
  chain cannot be walked whole (a hole left by an older pruner, a cycle) gets no ``rn``
  and loses nothing;
* ``superseded_at``: the issue time of its end transaction, the one that superseded it
  (R4). Many-to-many association tables, whose ``end_transaction_id`` Continuum never
  fills, take the next row of the same key instead, in id order: they have no other;
* whether the record is deleted: its open version (``end_transaction_id IS NULL``) is a
  delete (R1, R5).

A version is *eligible* when its record was deleted more than ``deleted_keep_days`` ago
(R5: the whole chain, tombstone included), or when it is superseded, not among the
``keep_versions`` newest (R3) and was superseded more than ``keep_days`` ago (R4). Only
the eligible versions older in commit order than every ineligible version of their record
are prunable: a prefix of the chain (R2), which the engine deletes oldest first so that an
interrupted run leaves no hole either (R7). The open version of a record that is
not deleted is never eligible (R1).
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
    """Every row of ``target`` with its key, transaction, place in the chain and ``prune`` flag.

    Args:
        target: The version table and its rules.
        transactions: Continuum's ``transaction`` table.
        now: The time the rules count days back from (naive UTC, like ``issued_at``).
        row_id: A physical row address of ``target`` to carry along (PostgreSQL's ctid).

    Returns:
        A subquery with the key columns, ``transaction_id``, ``end_transaction_id``,
        ``issued_at`` (of the version's own transaction), ``position`` (larger is newer
        in commit order, within a record), ``prune`` (true for the rows to delete) and,
        if asked for, ``row_id``.
    """
    ranked = (
        _association_ranked(target, transactions, row_id)
        if target.association
        else _entity_ranked(target, transactions, row_id)
    )
    rules = target.rules
    issued_type = transactions.c.issued_at.type

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
    carried = [ranked.c.row_id] if row_id is not None else []

    flagged = sa.select(
        *key,
        ranked.c.transaction_id,
        ranked.c.end_transaction_id,
        ranked.c.issued_at,
        ranked.c.rn,
        ranked.c.versions,
        *carried,
        # the newest place (smallest rn) of an ineligible version: the chain is kept from
        # there; a version with no place (an unwalkable chain) counts as ineligible
        sa.func.max(sa.case((eligible == 0, sa.func.coalesce(ranked.c.rn, ranked.c.versions))))
        .over(partition_by=key)
        .label("keep_from"),
    ).subquery("flagged")

    return sa.select(
        *(flagged.c[column.name] for column in target.key),
        flagged.c.transaction_id,
        flagged.c.end_transaction_id,
        flagged.c.issued_at,
        (flagged.c.versions - flagged.c.rn).label("position"),
        *(flagged.c.row_id for _ in carried),
        sa.and_(
            flagged.c.rn.is_not(None),
            sa.or_(flagged.c.keep_from.is_(None), flagged.c.rn > flagged.c.keep_from),
        ).label("prune"),
    ).subquery("classified")


def _entity_ranked(
    target: VersionTable, transactions: sa.Table, row_id: sa.ColumnElement[Any] | None
) -> sa.Subquery:
    """An entity version table's rows with ``rn`` in commit order and their record's facts."""
    tx, end, operation = target.transaction_id, target.end_transaction_id, target.operation_type
    issued_type = transactions.c.issued_at.type
    own = transactions.alias("own_tx")
    ended = transactions.alias("end_tx")
    by_record: dict[str, Any] = {"partition_by": target.key}
    is_open = end.is_(None)
    carried = [] if row_id is None else [row_id.label("row_id")]
    base = (
        sa.select(
            *target.key,
            tx.label("transaction_id"),
            end.label("end_transaction_id"),
            own.c.issued_at.label("issued_at"),
            ended.c.issued_at.label("superseded_at"),
            *carried,
            # 1 for the newest by id, 2 for the one before, ...: commit order unless
            # the record is disordered
            sa.func.count().over(**by_record, order_by=tx, rows=(0, None)).label("rn_by_id"),
            sa.func.count().over(**by_record).label("versions"),
            sa.func.max(sa.case((end <= tx, 1), else_=0)).over(**by_record).label("disordered"),
            # in a chain every version but the first is some version's end (H2), so the
            # sums differ by the first version's transaction id
            (
                sa.func.sum(tx).over(**by_record)
                - sa.func.coalesce(sa.func.sum(end).over(**by_record), 0)
            ).label("first_id"),
            sa.func.max(sa.case((is_open, operation))).over(**by_record).label("last_operation"),
            sa.func.max(sa.case((is_open, own.c.issued_at), else_=sa.null()), type_=issued_type)
            .over(**by_record)
            .label("last_issued_at"),
        )
        .select_from(
            target.table.outerjoin(own, own.c.id == tx).outerjoin(ended, ended.c.id == end)
        )
        .cte("chain_rows")
    )
    walked = _walk(target, base)
    joined_on = [walked.c[column.name] == base.c[column.name] for column in target.key]
    reached = sa.func.count(walked.c.step).over(partition_by=[base.c[c.name] for c in target.key])
    with_steps = (
        sa.select(
            base,
            walked.c.step,
            reached.label("reached"),
        )
        .select_from(
            base.outerjoin(
                walked, sa.and_(*joined_on, walked.c.transaction_id == base.c.transaction_id)
            )
        )
        .subquery("with_steps")
    )
    # a disordered record is ranked only when its walk reached every version
    walked_rn = sa.case(
        (
            with_steps.c.reached == with_steps.c.versions,
            with_steps.c.reached - with_steps.c.step + 1,
        )
    )
    return sa.select(
        *(with_steps.c[column.name] for column in target.key),
        with_steps.c.transaction_id,
        with_steps.c.end_transaction_id,
        with_steps.c.issued_at,
        with_steps.c.superseded_at,
        *(with_steps.c.row_id for _ in carried),
        with_steps.c.versions,
        sa.case((with_steps.c.disordered == 1, walked_rn), else_=with_steps.c.rn_by_id).label("rn"),
        with_steps.c.last_operation,
        with_steps.c.last_issued_at,
    ).subquery("ranked")


def _walk(target: VersionTable, base: sa.CTE) -> sa.CTE:
    """The chains of the disordered records, walked from their first version.

    One row per version reached, with ``step`` 1 for the first. Each step looks the next
    version up by primary key (record, transaction = this version's end), in a scalar
    subquery so that the database cannot pick a plan that scans the table per step; the
    walk stops at the open version, at a pointer to nowhere, or after as many steps as
    the record has versions (a cycle).
    """
    key = [base.c[column.name] for column in target.key]
    start = (
        sa.select(
            *key,
            base.c.transaction_id,
            base.c.end_transaction_id,
            sa.literal(1, sa.Integer).label("step"),
            base.c.versions,
        )
        .where(base.c.disordered == 1, base.c.transaction_id == base.c.first_id)
        .cte("chain_walk", recursive=True)
    )
    following = target.table.alias("following")
    next_end = (
        sa.select(following.c[target.end_transaction_id.name])
        .where(
            *(following.c[column.name] == start.c[column.name] for column in target.key),
            following.c[target.transaction_id.name] == start.c.end_transaction_id,
        )
        .scalar_subquery()
    )
    return start.union_all(
        sa.select(
            *(start.c[column.name] for column in target.key),
            start.c.end_transaction_id,
            next_end,
            start.c.step + 1,
            start.c.versions,
        ).where(start.c.end_transaction_id.is_not(None), start.c.step < start.c.versions)
    )


def _association_ranked(
    target: VersionTable, transactions: sa.Table, row_id: sa.ColumnElement[Any] | None
) -> sa.Subquery:
    """A many-to-many version table's rows, in id order: it has no end pointers."""
    tx = target.transaction_id
    issued_type = transactions.c.issued_at.type
    own = transactions.alias("own_tx")
    oldest_first: dict[str, Any] = {"partition_by": target.key, "order_by": tx}
    whole_chain: dict[str, Any] = {**oldest_first, "rows": (None, None)}
    carried = [] if row_id is None else [row_id.label("row_id")]
    return (
        sa.select(
            *target.key,
            tx.label("transaction_id"),
            target.end_transaction_id.label("end_transaction_id"),
            own.c.issued_at.label("issued_at"),
            sa.func.lead(own.c.issued_at, type_=issued_type)
            .over(**oldest_first)
            .label("superseded_at"),
            *carried,
            sa.func.count().over(partition_by=target.key).label("versions"),
            sa.func.count().over(**oldest_first, rows=(0, None)).label("rn"),
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


def prunable_keys(
    target: VersionTable,
    transactions: sa.Table,
    now: datetime,
    row_id: sa.ColumnElement[Any] | None = None,
) -> sa.Select[Any]:
    """The key, transaction and ``position`` (and ``row_id``) of every prunable row.

    Ordered by record, then oldest first in commit order: deleting in this order never
    leaves a hole in a chain, wherever a run stops.
    """
    rows = classified(target, transactions, now, row_id)
    columns = [rows.c[column.name] for column in target.key]
    carried = [] if row_id is None else [rows.c.row_id]
    return (
        sa.select(*columns, rows.c.transaction_id, rows.c.position, *carried)
        .where(rows.c.prune)
        .order_by(*columns, rows.c.position)
    )
