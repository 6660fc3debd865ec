"""History a page at a time: keyset pages of versions, deleted records and transactions.

A record with ten thousand versions or a model with a million version rows is read a
page at a time, each page one bounded SQL statement on the version tables' indexes
(``(key, transaction_id)`` for one record, ``transaction_id`` for a model), plus one for
the versions the page's versions follow, so that each version still shows what it
changed::

    from vestige.history import versions_page

    page = versions_page(session, Package, key=7, limit=50)        # the newest 50
    older = versions_page(session, Package, key=7, before=page.older)
    deleted = versions_page(session, Package, deleted=True)        # deleted records

Pages run newest first in ``transaction_id`` order, which a keyset can follow; each
version's ``changes`` are still taken against the version it followed in commit order
(the one whose ``end_transaction_id`` is its transaction, H2).

About 550 lines in one module: the pagers share the keyset, the cursors and the reading of
the versions a page's versions follow; apart, each would carry its own copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.dialects import postgresql

from vestige.history.queries import (
    Shape,
    _select_versions,
    normalize_key,
    shape_of,
    transaction_columns,
    transaction_table,
    versioned_tables,
)
from vestige.history.reading import (
    Operation,
    Touched,
    TransactionChanges,
    Version,
    _transaction_changes,
    _transactions_select,
    _user_text,
    _version,
)

__all__ = [
    "Cursor",
    "ModelSummary",
    "Page",
    "model_summary",
    "touched_records",
    "transaction_details",
    "transaction_rows",
    "transactions_page",
    "versions_page",
]

T = TypeVar("T")

#: Where a page starts or ends: ``(transaction_id, *key)`` for versions,
#: ``(transaction_id,)`` for transactions.
Cursor = tuple[Any, ...]

_DELETE = 2
_COMPOUND = 200
_PER_TRANSACTION: dict[tuple[str, int, int], sa.CompoundSelect[Any]] = {}


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list, newest first.

    Attributes:
        items: What is on the page.
        newer: Pass as ``after`` for the page before this one (``None``: this is the first).
        older: Pass as ``before`` for the page after this one (``None``: this is the last).
    """

    items: tuple[T, ...]
    newer: Cursor | None
    older: Cursor | None


@dataclass(frozen=True)
class ModelSummary:
    """How much history a model has.

    Attributes:
        live_rows: Rows in the model's table now.
        versions: Version rows kept.
        deleted: Records whose newest version is a delete (R1).
        oldest_kept: When the oldest transaction still referenced by a version ran.
        estimated: Which of ``live_rows`` and ``versions`` are PostgreSQL's estimates
            (see :func:`model_summary`), not counts.
    """

    live_rows: int
    versions: int
    deleted: int
    oldest_kept: datetime | None
    estimated: frozenset[str] = frozenset()

    def to_dict(self) -> dict[str, Any]:
        """The summary as data."""
        return {
            "live_rows": self.live_rows,
            "versions": self.versions,
            "deleted": self.deleted,
            "oldest_kept": self.oldest_kept,
            "estimated": sorted(self.estimated),
        }


def model_summary(
    session: orm.Session, model: type[Any], *, estimate_above: int | None = None
) -> ModelSummary:
    """Count a model's live rows, versions and deleted records, and date its history.

    One statement of four scalar subqueries, each answered from one table or index.
    Counting every row takes time in proportion to the table; with ``estimate_above``,
    a table the database's statistics put above that many rows is not counted: its
    estimate as of the last ANALYZE (``pg_class.reltuples`` on PostgreSQL, the row count
    in ``sqlite_stat1`` on SQLite) stands in, and ``estimated`` names it. Deleted records
    are always counted (from the index on ``end_transaction_id``).
    """
    shape = shape_of(model)
    mapper = sa.inspect(model)
    count = sa.func.count()
    live = sa.select(count).select_from(mapper).scalar_subquery()
    versions = sa.select(count).select_from(shape.selectable).where(*shape.criteria)
    deleted = versions.where(*_deleted_now(session, shape))
    oldest_id = (
        sa.select(sa.func.min(shape.transaction_id))
        .select_from(shape.selectable)
        .where(*shape.criteria)
        .scalar_subquery()
    )
    transaction = transaction_table()
    oldest = sa.select(transaction.c.issued_at).where(transaction.c.id == oldest_id)
    columns: list[sa.ColumnElement[Any]] = [
        live,
        versions.scalar_subquery(),
        sa.literal(False),
        sa.literal(False),
    ]
    tables = _estimable(model, shape) if estimate_above is not None else None
    if tables is not None and estimate_above is not None:
        dialect = session.get_bind().dialect.name
        # An uncorrelated subquery runs only when its CASE branch is taken (PostgreSQL's
        # InitPlans, SQLite's CASE): a big table is estimated and never counted.
        for place, table in enumerate(tables):
            guess = _row_estimate(session, dialect, table)
            if guess is not None:
                big = sa.func.coalesce(guess, 0) > estimate_above
                columns[place + 2] = big
                columns[place] = sa.case((big, guess), else_=columns[place])
    found: Sequence[Any] = session.execute(
        sa.select(*columns, deleted.scalar_subquery(), oldest.scalar_subquery())
    ).one()
    live_rows, version_count, live_guessed, versions_guessed, deleted_count, oldest_at = found
    estimated = frozenset(
        name
        for name, guessed in (("live_rows", live_guessed), ("versions", versions_guessed))
        if guessed
    )
    return ModelSummary(
        live_rows=int(live_rows or 0),
        versions=int(version_count or 0),
        deleted=int(deleted_count or 0),
        oldest_kept=oldest_at,
        estimated=estimated,
    )


def _deleted_now(session: orm.Session, shape: Shape) -> list[sa.ColumnElement[bool]]:
    """The delete versions still open: records deleted now (R1).

    Deletes are rarer than open versions (a record is deleted at most once per life,
    and every record has an open version), so the index on ``operation_type`` is the
    way in. PostgreSQL's statistics see that; SQLite's planner is told with
    ``likelihood()``, or it walks every open version.
    """
    is_open: sa.ColumnElement[bool] = shape.end_transaction_id.is_(None)
    if session.get_bind().dialect.name == "sqlite":
        # the probability must be a literal constant in the SQL text
        likely: Any = sa.func.likelihood(is_open, sa.literal_column("0.5"))
        is_open = likely
    return [is_open, shape.operation_type == _DELETE]


def _row_estimate(
    session: orm.Session, dialect: str, table: sa.Table
) -> sa.ScalarSelect[Any] | None:
    """The database's own row estimate of ``table`` as of its last ANALYZE, as SQL:
    ``pg_class.reltuples`` on PostgreSQL, the row count in ``sqlite_stat1`` on SQLite
    (``None`` where SQLite was never analyzed, or on another database)."""
    if dialect == "postgresql":
        return (
            sa.select(sa.cast(sa.column("reltuples"), sa.BigInteger))
            .select_from(sa.table("pg_class"))
            .where(sa.column("oid") == sa.func.to_regclass(table.fullname))
            .scalar_subquery()
        )
    if dialect != "sqlite" or not session.scalar(
        sa.text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'")
    ):
        return None
    # each row of a table's indexes in sqlite_stat1 starts with the table's row count
    stat: sa.ColumnClause[str] = sa.column("stat", sa.String)
    first = sa.func.substr(stat, 1, sa.func.instr(stat.concat(" "), " ") - 1)
    return (
        sa.select(sa.func.max(sa.cast(first, sa.BigInteger)))
        .select_from(sa.table("sqlite_stat1"))
        .where(sa.column("tbl") == table.name)
        .scalar_subquery()
    )


def _estimable(model: type[Any], shape: Shape) -> tuple[sa.Table, sa.Table] | None:
    """The model's table and version table, if each is a plain table of this model
    alone (no inheritance), whose row count PostgreSQL's statistics can stand for."""
    mapper = sa.inspect(model)
    if shape.criteria or mapper.inherits is not None or mapper.polymorphic_map:
        return None
    table, version_table = mapper.local_table, shape.selectable
    if not isinstance(table, sa.Table) or not isinstance(version_table, sa.Table):
        return None
    return table, version_table


def versions_page(
    session: orm.Session,
    model: type[Any],
    *,
    key: Any = None,
    deleted: bool = False,
    before: Cursor | None = None,
    after: Cursor | None = None,
    limit: int = 50,
) -> Page[Version]:
    """A page of a model's versions, newest first: of one record, or of every record.

    Args:
        session: The session to read with.
        model: The versioned mapped class.
        key: Only this record's versions (a value, a tuple, or a mapping).
        deleted: Only the delete versions of records that are deleted now (each
            deleted record once): what an undelete can bring back.
        before: The page after the one whose ``older`` cursor this is.
        after: The page before the one whose ``newer`` cursor this is.
        limit: At most this many versions.

    Returns:
        The page; each version's ``changes`` are against the version it followed.
    """
    shape = shape_of(model)
    keys = [_column(shape, name) for name in shape.key_fields]
    query = _select(shape)
    if key is not None:
        query = query.where(
            *[col == value for col, value in zip(keys, normalize_key(model, key), strict=True)]
        )
    if deleted:
        query = query.where(*_deleted_now(session, shape))
    order = [shape.transaction_id, *keys]
    rows = _keyset(session, query, order, before, after, limit)
    versions = _with_changes(session, shape, keys, rows)
    return _page(versions, rows, before, after, limit, lambda v: (v.transaction_id, *v.key))


def transactions_page(
    session: orm.Session,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    user: Any = None,
    model: type[Any] | None = None,
    before: Cursor | None = None,
    after: Cursor | None = None,
    limit: int = 50,
    touched_limit: int = 20,
) -> Page[TransactionChanges]:
    """A page of transactions, newest first, each with the records it touched.

    Args:
        session: The session to read with.
        since: Only transactions issued at or after this moment.
        until: Only transactions issued before this moment.
        user: Only transactions by this user id.
        model: Only transactions that wrote a version of this mapped class.
        before: The page after the one whose ``older`` cursor this is.
        after: The page before the one whose ``newer`` cursor this is.
        limit: At most this many transactions.
        touched_limit: At most this many touched records listed per transaction and
            version table (a transaction's own page lists them all, a page at a time).
    """
    transaction, query = _transactions_select(since, until, user)
    if model is not None:
        shape = shape_of(model)
        query = query.where(
            sa.exists().where(shape.transaction_id == transaction.c.id, *shape.criteria)
        )
    rows = _keyset(session, query, [transaction.c.id], before, after, limit)
    ids = [row[0] for row in rows[:limit]]
    touched = _touched(session, ids, touched_limit)
    items = [_transaction_changes(row, touched.get(row[0], ())) for row in rows[:limit]]
    return _page(items, rows, before, after, limit, lambda t: (t.transaction_id,))


def transaction_details(session: orm.Session, transaction_id: int) -> dict[str, Any] | None:
    """Every column of one ``transaction`` row, whatever columns the table has.

    Plugins and applications add columns to Continuum's transaction table (a context, a
    request id); this reads them all, by column name, and the user's label as ``user``.

    Returns:
        The row as a mapping, or ``None`` if there is no such transaction.
    """
    return transaction_rows(session, [transaction_id]).get(transaction_id)


def transaction_rows(session: orm.Session, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Every column of some ``transaction`` rows, by id, in one statement.

    Each row maps column names to values, plus ``user``, the user's label (``None``
    when nobody was recorded), as :attr:`Version.user` shows it.
    """
    if not ids:
        return {}
    transaction = transaction_table()
    columns, joined = transaction_columns(transaction)
    user_label = columns[4]  # id, issued_at, user_id, remote_addr, the label, the context
    rows = session.execute(
        sa.select(transaction, user_label.label("vestige_user_label"))
        .select_from(joined)
        .where(transaction.c.id.in_(sorted(set(ids))))
    )
    found: dict[int, dict[str, Any]] = {}
    for row in rows:
        values = dict(row._mapping)
        label = values.pop("vestige_user_label")
        values["user"] = _user_text(values.get("user_id"), label) or None
        found[values["id"]] = values
    return found


def touched_records(
    session: orm.Session, transaction_id: int, *, per_table: int | None = 500
) -> list[Touched]:
    """The records one transaction wrote versions of, by model and key.

    Args:
        session: The session to read with.
        transaction_id: The transaction.
        per_table: At most this many per version table (``None``: all of them).
    """
    return _touched(session, [transaction_id], per_table)[transaction_id]


def _select(shape: Shape) -> sa.Select[Any]:
    """The value, version and transaction columns of :func:`history`'s statement."""
    return _select_versions(shape).where(*shape.criteria)


def _column(shape: Shape, name: str) -> sa.Column[Any]:
    return dict(zip(shape.fields, shape.columns, strict=True))[name]


def _keyset(
    session: orm.Session,
    query: sa.Select[Any],
    order: Sequence[sa.ColumnElement[Any]],
    before: Cursor | None,
    after: Cursor | None,
    limit: int,
) -> list[Sequence[Any]]:
    """``limit + 1`` rows newest first past the cursor; the extra one says there is more.

    The row comparison comes with a plain bound on its first column, which every
    database turns into an index range.
    """
    head = order[0]
    if after is not None:
        query = query.where(head >= after[0], sa.tuple_(*order) > sa.tuple_(*after))
        rows: list[Sequence[Any]] = list(session.execute(query.order_by(*order).limit(limit + 1)))
        return list(reversed(rows[:limit])) + list(rows[limit:])
    if before is not None:
        query = query.where(head <= before[0], sa.tuple_(*order) < sa.tuple_(*before))
    return list(
        session.execute(query.order_by(*[col.desc() for col in order]).limit(limit + 1)).all()
    )


def _page(
    items: Sequence[T],
    rows: Sequence[Any],
    before: Cursor | None,
    after: Cursor | None,
    limit: int,
    cursor: Any,
) -> Page[T]:
    shown = tuple(items[:limit])
    more = len(rows) > limit
    if after is not None:
        # read upwards from ``after``: an extra row means newer pages exist
        newer = cursor(shown[0]) if shown and more else None
        older = cursor(shown[-1]) if shown else after
        return Page(shown, newer, older)
    newer = cursor(shown[0]) if shown and before is not None else None
    older = cursor(shown[-1]) if shown and more else None
    return Page(shown, newer, older)


def _with_changes(
    session: orm.Session,
    shape: Shape,
    keys: Sequence[sa.Column[Any]],
    rows: Sequence[Sequence[Any]],
) -> list[Version]:
    """Versions of ``rows``, each with its changes against the version it followed.

    The versions followed are read in one statement by their end pointers.
    """
    size = len(shape.fields)
    key_at = [shape.fields.index(name) for name in shape.key_fields]
    ids = {row[size] for row in rows}
    previous: dict[tuple[Any, ...], Sequence[Any]] = {}
    if ids:
        record_keys = {tuple(row[i] for i in key_at) for row in rows}
        query = _select(shape)
        if len(record_keys) == 1:
            query = query.where(
                shape.end_transaction_id.in_(ids),
                *[col == value for col, value in zip(keys, next(iter(record_keys)), strict=True)],
            )
        else:
            # (key, end_transaction_id) pairs, each an index lookup: a transaction may have
            # written thousands of versions of other records, which an IN on the end
            # pointer alone would read
            pairs = {(*[row[i] for i in key_at], row[size]) for row in rows}
            query = query.where(
                sa.or_(
                    *[
                        sa.and_(
                            *[col == value for col, value in zip(keys, pair, strict=False)],
                            shape.end_transaction_id == pair[-1],
                        )
                        for pair in sorted(pairs, key=str)
                    ]
                )
            )
        for found in session.execute(query):
            row: Sequence[Any] = found
            record = tuple(row[i] for i in key_at)
            if record in record_keys:
                previous[(*record, row[size + 1])] = row
    versions = []
    for row in rows:
        before_row = previous.get((*[row[i] for i in key_at], row[size]))
        before = None if before_row is None else _version(shape, before_row, None, first=False)
        versions.append(_version(shape, row, before, first=before_row is None))
    return versions


def _touched(
    session: orm.Session, ids: Sequence[int], per_table: int | None
) -> dict[int, list[Touched]]:
    """The records each transaction wrote versions of, by transaction id.

    With ``per_table``, each transaction's rows come from a subquery of their own with a
    LIMIT (one statement per version table, the subqueries joined by UNION ALL): a
    transaction that wrote thousands of versions costs ``per_table`` index entries, not a
    scan of them all. A single transaction's records come in key order.
    """
    touched: dict[int, list[Touched]] = {tx_id: [] for tx_id in ids}
    if not ids:
        return touched
    for table, key_names, discriminator, names in versioned_tables():
        keys = [table.c[key_name] for key_name in key_names]
        kind = sa.null() if discriminator is None else discriminator
        query = sa.select(table.c.transaction_id, table.c.operation_type, kind, *keys)
        statements: list[tuple[sa.Executable, dict[str, Any]]] = []
        if per_table is None:
            statements.append((query.where(table.c.transaction_id.in_(ids)), {}))
        elif len(ids) == 1:
            limited = query.where(table.c.transaction_id == ids[0]).order_by(*keys)
            statements.append((limited.limit(per_table), {}))
        elif session.get_bind().dialect.name == "postgresql":
            # one LATERAL subquery over the ids, planned once
            wanted = sa.func.unnest(sa.literal(list(ids), postgresql.ARRAY(sa.BigInteger)))
            each = wanted.table_valued("tx").render_derived()
            inner = query.where(table.c.transaction_id == each.c.tx).limit(per_table).lateral()
            statements.append((sa.select(*inner.c).select_from(each).join(inner, sa.true()), {}))
        else:
            # SQLite allows 500 terms in a compound SELECT
            for start in range(0, len(ids), _COMPOUND):
                chunk = ids[start : start + _COMPOUND]
                compound = _per_transaction(table, query, len(chunk), per_table)
                statements.append((compound, {f"tx_{i}": tx for i, tx in enumerate(chunk)}))
        for statement, params in statements:
            for tx_id, operation_type, identity, *key in session.execute(statement, params):
                name = names.get(identity, names[None])
                operation = Operation.from_type(operation_type)
                touched[tx_id].append(Touched(name, tuple(key), operation))
    for records in touched.values():
        records.sort(key=lambda record: (record.model, [str(part) for part in record.key]))
    return touched


def _per_transaction(
    table: sa.Table, query: sa.Select[Any], count: int, per_table: int
) -> sa.CompoundSelect[Any]:
    """``count`` subqueries of ``query``, one per ``tx_<i>`` parameter, each with a LIMIT,
    built once: building hundreds of subqueries costs more than running them."""
    key = (table.fullname, count, per_table)
    found = _PER_TRANSACTION.get(key)
    if found is None:
        parts = [
            query.where(table.c.transaction_id == sa.bindparam(f"tx_{i}")).limit(per_table)
            for i in range(count)
        ]
        found = _PER_TRANSACTION[key] = sa.union_all(
            *[sa.select(*part.subquery().c) for part in parts]
        )
    return found
