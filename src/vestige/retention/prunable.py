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
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from vestige.retention.policy import Rules

__all__ = ["DELETE_OPERATION", "VersionTable", "classified", "month_number", "prunable_keys"]

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
    *,
    timeline: bool = False,
) -> sa.Subquery:
    """Every row of ``target`` with its key, transaction, place in the chain and ``prune`` flag.

    Args:
        target: The version table and its rules.
        transactions: Continuum's ``transaction`` table.
        now: The time the rules count days back from (naive UTC, like ``issued_at``).
        row_id: A physical row address of ``target`` to carry along (PostgreSQL's ctid).
        timeline: Also give each row its record's ``newest_issued_at`` and ``time_unordered``:
            1 where the record's transaction times are not known to rise along its chain
            in commit order (a version issued before the one it superseded, or a
            transaction with no time), 0 where they are.

    Returns:
        A subquery with the key columns, ``transaction_id``, ``end_transaction_id``,
        ``issued_at`` (of the version's own transaction), ``position`` (larger is newer
        in commit order, within a record), ``prune`` (true for the rows to delete) and,
        if asked for, ``row_id`` and the ``timeline`` columns.
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
    by_record: dict[str, Any] = {"partition_by": key}
    if timeline:
        # superseded_at is the issue time of the next version in commit order: one row
        # each tells whether time steps back there. Windows over the record alone, like
        # keep_from's: computed in the same pass, no sort of their own
        steps_back = sa.or_(
            ranked.c.issued_at.is_(None), ranked.c.superseded_at < ranked.c.issued_at
        )
        carried += [
            sa.func.max(sa.case((steps_back, 1), else_=0))
            .over(**by_record)
            .label("time_unordered"),
            sa.func.max(ranked.c.issued_at, type_=issued_type)
            .over(**by_record)
            .label("newest_issued_at"),
        ]

    flagged = sa.select(
        *key,
        ranked.c.transaction_id,
        ranked.c.end_transaction_id,
        ranked.c.issued_at,
        ranked.c.rn,
        ranked.c.versions,
        *carried,
        # the oldest place (largest rn) of an ineligible version: the chain is kept from
        # there on; a version with no place (an unwalkable chain) keeps the whole record
        sa.func.max(sa.case((eligible == 0, sa.func.coalesce(ranked.c.rn, ranked.c.versions))))
        .over(**by_record)
        .label("keep_from"),
    ).subquery("flagged")

    return sa.select(
        *(flagged.c[column.name] for column in target.key),
        flagged.c.transaction_id,
        flagged.c.end_transaction_id,
        flagged.c.issued_at,
        (flagged.c.versions - flagged.c.rn).label("position"),
        *(flagged.c[column.name] for column in carried),
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
    by_record: dict[str, Any] = {"partition_by": target.key}
    oldest_first: dict[str, Any] = {**by_record, "order_by": tx}
    is_open = end.is_(None)
    carried = [] if row_id is None else [row_id.label("row_id")]
    # ranked by id: commit order wherever the record is not disordered
    base = (
        sa.select(
            *target.key,
            tx.label("transaction_id"),
            end.label("end_transaction_id"),
            own.c.issued_at.label("issued_at"),
            *carried,
            sa.func.count().over(**oldest_first, rows=(0, None)).label("rn_by_id"),
            sa.func.lead(own.c.issued_at, type_=issued_type)
            .over(**oldest_first)
            .label("next_issued_at"),
            sa.func.count().over(**by_record).label("versions"),
            sa.func.max(sa.case((end <= tx, 1), else_=0)).over(**by_record).label("disordered"),
            sa.func.max(sa.case((is_open, operation))).over(**by_record).label("last_operation"),
            sa.func.max(sa.case((is_open, own.c.issued_at), else_=sa.null()), type_=issued_type)
            .over(**by_record)
            .label("last_issued_at"),
        )
        .select_from(target.table.outerjoin(own, own.c.id == tx))
        .subquery("chain_rows")
    )
    walk = _walk(target)
    ended = transactions.alias("end_tx")
    walked = (
        sa.select(walk, ended.c.issued_at.label("superseded_at"))
        .select_from(walk.outerjoin(ended, ended.c.id == walk.c.end_transaction_id))
        .subquery("walked")
    )
    walks = (
        sa.select(
            *(walked.c[column.name] for column in target.key),
            sa.func.count().label("reached"),
        )
        .group_by(*(walked.c[column.name] for column in target.key))
        .subquery("walks")
    )
    same_record = [base.c[column.name] == walks.c[column.name] for column in target.key]
    same_version = [base.c[column.name] == walked.c[column.name] for column in target.key]
    joined = base.outerjoin(walks, sa.and_(*same_record)).outerjoin(
        walked, sa.and_(*same_version, walked.c.transaction_id == base.c.transaction_id)
    )
    disordered = base.c.disordered == 1
    # a disordered record is ranked only when its walk reached every version
    walked_rn = sa.case((walks.c.reached == base.c.versions, walks.c.reached - walked.c.step + 1))
    return (
        sa.select(
            *(base.c[column.name] for column in target.key),
            base.c.transaction_id,
            base.c.end_transaction_id,
            base.c.issued_at,
            sa.case((disordered, walked.c.superseded_at), else_=base.c.next_issued_at).label(
                "superseded_at"
            ),
            *(base.c.row_id for _ in carried),
            base.c.versions,
            sa.case((disordered, walked_rn), else_=base.c.rn_by_id).label("rn"),
            base.c.last_operation,
            base.c.last_issued_at,
        )
        .select_from(joined)
        .subquery("ranked")
    )


def _walk(target: VersionTable) -> sa.CTE:
    """The chains of the disordered records, walked from their first version.

    A record is disordered when one of its versions ends at a transaction numbered at or
    before its own. Its walk has one row per version reached, with ``step`` 1 for the
    first. In a
    chain every version but the first is some version's end (H2), so the sums of the two
    columns differ by the first version's transaction id. Each step looks the next
    version up by primary key (record, transaction = this version's end) in a scalar
    subquery, so that the database cannot pick a plan that scans the table per step; the
    walk stops at the open version, at a pointer to nowhere, or after as many steps as
    the record has versions (a cycle).
    """
    table, tx, end = target.table, target.transaction_id, target.end_transaction_id
    keys = [column.name for column in target.key]
    disordered = sa.select(*target.key).where(end <= tx).distinct().subquery("disordered")
    versions = table.alias("record_versions")
    of_record = [versions.c[name] == disordered.c[name] for name in keys]
    firsts = sa.select(
        *(disordered.c[name] for name in keys),
        (
            sa.select(
                sa.func.sum(versions.c[tx.name])
                - sa.func.coalesce(sa.func.sum(versions.c[end.name]), 0)
            )
            .where(*of_record)
            .scalar_subquery()
            .label("first_id")
        ),
        sa.select(sa.func.count())
        .select_from(versions)
        .where(*of_record)
        .scalar_subquery()
        .label("versions"),
    ).subquery("firsts")
    # driven by the few disordered records, each look-up by primary key; if the sums name
    # no version (a broken chain), the walk stops at that one step, which matches no row
    first = table.alias("first_version")
    is_first = [first.c[name] == firsts.c[name] for name in keys]
    start = sa.select(
        *(firsts.c[name] for name in keys),
        firsts.c.first_id.label("transaction_id"),
        sa.select(first.c[end.name])
        .where(*is_first, first.c[tx.name] == firsts.c.first_id)
        .scalar_subquery()
        .label("end_transaction_id"),
        sa.literal(1, sa.Integer).label("step"),
        firsts.c.versions,
    ).cte("chain_walk", recursive=True)
    following = table.alias("following")
    next_end = (
        sa.select(following.c[end.name])
        .where(
            *(following.c[name] == start.c[name] for name in keys),
            following.c[tx.name] == start.c.end_transaction_id,
        )
        .scalar_subquery()
    )
    return start.union_all(
        sa.select(
            *(start.c[name] for name in keys),
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


class month_number(FunctionElement[int]):
    """``YYYYMM`` of a time as an integer (``NULL`` for ``NULL``): a month, sortable."""

    type = sa.Integer()
    inherit_cache = True


@compiles(month_number)
def _month_number(element: month_number, compiler: SQLCompiler, **kw: Any) -> str:
    moment = compiler.process(element.clauses, **kw)
    return f"CAST(EXTRACT(YEAR FROM {moment}) * 100 + EXTRACT(MONTH FROM {moment}) AS INTEGER)"


@compiles(month_number, "postgresql")
def _month_number_postgresql(element: month_number, compiler: SQLCompiler, **kw: Any) -> str:
    # date_part: double precision arithmetic, several times cheaper than EXTRACT's numeric
    moment = compiler.process(element.clauses, **kw)
    return f"CAST(date_part('year', {moment}) * 100 + date_part('month', {moment}) AS INTEGER)"


@compiles(month_number, "sqlite")
def _month_number_sqlite(element: month_number, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(strftime('%Y%m', {compiler.process(element.clauses, **kw)}) AS INTEGER)"


def prunable_keys(
    target: VersionTable,
    transactions: sa.Table,
    now: datetime,
    row_id: sa.ColumnElement[Any] | None = None,
    *,
    by_month: bool = False,
) -> sa.Select[Any]:
    """The key, transaction and ``position`` (and ``row_id``) of every prunable row.

    Ordered by record, then oldest first in commit order: deleting in this order never
    leaves a hole in a chain, wherever a run stops.

    Args:
        target: The version table and its rules.
        transactions: Continuum's ``transaction`` table.
        now: The time the rules count days back from.
        row_id: A physical row address of ``target`` to carry along.
        by_month: Also give each row ``issued_month``, the month (``YYYYMM``) of its
            transaction, and ``month``, a month that never decreases along a chain: its
            own where the record's transaction times rise along the chain in commit
            order (nearly always), else the month of the record's newest transaction,
            one for all its rows (``0`` if no transaction of the record has a time).
            Ordering by ``month``, then record, then ``position`` still deletes each
            record's rows oldest first, while a batch holds few months (an archive
            writes a file per table and month of each batch).
    """
    rows = classified(target, transactions, now, row_id, timeline=by_month)
    columns = [rows.c[column.name] for column in target.key]
    carried = [] if row_id is None else [rows.c.row_id]
    if by_month:
        # no window ordered along the chain (a sort of every row): where time rises
        # along the chain, a row's own month never decreases along it
        issued_month = month_number(rows.c.issued_at)
        whole_record = sa.func.coalesce(month_number(rows.c.newest_issued_at), 0)
        carried += [
            issued_month.label("issued_month"),
            sa.case((rows.c.time_unordered == 1, whole_record), else_=issued_month).label("month"),
        ]
    return (
        sa.select(*columns, rows.c.transaction_id, rows.c.position, *carried)
        .where(rows.c.prune)
        .order_by(*columns, rows.c.position)
    )
