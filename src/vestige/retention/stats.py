"""How big history is, how fast it grows, and what the retention policy would take.

::

    from vestige.retention import load_policy
    from vestige.retention.stats import history_stats

    stats = history_stats(engine, load_policy(settings.raw), archive=settings.archive_url)
    for table in stats.tables:
        print(table.table, table.version_rows, table.bytes)

Each figure is one SQL aggregate per version table (the versions per record come back as
a histogram, not as one row per record); sizes are PostgreSQL's relation sizes (table,
indexes and TOAST) or, on SQLite, the ``dbstat`` virtual table's page sizes when SQLite
was built with it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from vestige.registry import VersionedModel, versioned_models
from vestige.retention.engine import prune, version_tables
from vestige.retention.policy import Policy
from vestige.retention.prunable import VersionTable
from vestige.versioning.setup import versioning_manager

__all__ = ["NO_DBSTAT", "HistoryStats", "TableStats", "daily_versions", "history_stats"]

NO_DBSTAT = (
    "this SQLite has no dbstat table (built without SQLITE_ENABLE_DBSTAT_VTAB): sizes unknown"
)
TOP = 10


@dataclass(frozen=True)
class TableStats:
    """One version table's figures.

    Attributes:
        table: The version table.
        model: The model (or association table) it versions.
        live_records: Rows of the live table.
        version_rows: Rows of the version table.
        records: Records with at least one version.
        median_versions: Versions per record, median.
        p99_versions: Versions per record, 99th percentile.
        bytes: Table plus indexes, in bytes (``None``: unknown, see ``size_note``).
        per_day_30: Versions written per day over the last 30 days.
        per_day_365: Versions written per day over the last 365 days.
        top: The records with the most versions: (key, versions), at most ten.
        would_prune: Version rows the retention policy would delete now.
        archived_rows: Rows of this table in the archive (``None``: no archive).
    """

    table: str
    model: str
    live_records: int
    version_rows: int
    records: int
    median_versions: float
    p99_versions: int
    bytes: int | None
    per_day_30: float
    per_day_365: float
    top: tuple[tuple[tuple[Any, ...], int], ...]
    would_prune: int
    archived_rows: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "model": self.model,
            "live_records": self.live_records,
            "version_rows": self.version_rows,
            "records": self.records,
            "versions_per_record": {"median": self.median_versions, "p99": self.p99_versions},
            "bytes": self.bytes,
            "growth_per_day": {"last_30_days": self.per_day_30, "last_365_days": self.per_day_365},
            "top_records": [{"key": list(key), "versions": count} for key, count in self.top],
            "would_prune": self.would_prune,
            "archived_rows": self.archived_rows,
        }


@dataclass(frozen=True)
class HistoryStats:
    """Every version table's figures, and the database's and archive's totals.

    Attributes:
        tables: One per version table, in name order.
        size_note: Why sizes are unknown, if they are.
        transactions: Rows of the ``transaction`` table.
        would_prune_transactions: Transactions the policy would delete now.
        archive_url: The archive, if one is configured.
        archive_bytes: The size of its committed files.
    """

    tables: tuple[TableStats, ...]
    size_note: str | None
    transactions: int
    would_prune_transactions: int
    archive_url: str | None = None
    archive_bytes: int | None = None
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_dict(self) -> dict[str, Any]:
        """The one JSON shape ``vestige stats --json`` prints."""
        return {
            "generated_at": self.generated_at.isoformat(),
            "tables": [table.to_dict() for table in self.tables],
            "size_note": self.size_note,
            "transactions": self.transactions,
            "would_prune_transactions": self.would_prune_transactions,
            "archive": None
            if self.archive_url is None
            else {"url": self.archive_url, "bytes": self.archive_bytes},
        }


def history_stats(
    engine: sa.Engine,
    policy: Policy,
    *,
    archive: str | None = None,
    now: datetime | None = None,
    models: Mapping[str, VersionedModel] | None = None,
) -> HistoryStats:
    """Measure the history in ``engine``'s database (reads only).

    Args:
        engine: The application database.
        policy: The retention policy whose dry run says what it would delete.
        archive: The archive's URL, to report its size and rows per table.
        now: The time growth counts back from (default: now, naive UTC).
        models: The versioned models (default: every configured one).

    Raises:
        ConfigError: The policy names unknown models.
        ArchiveError: The archive cannot be read.
    """
    moment = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    models = versioned_models() if models is None else models
    targets = version_tables(policy, models)
    dry_run = prune(engine, policy, dry_run=True, now=moment, models=models)
    dry = {table.table: table.deleted for table in dry_run.tables}
    archived: dict[str, int] | None = None
    archive_size: int | None = None
    if archive is not None:
        from vestige.archive import Manifest, open_target

        manifest = Manifest.load(open_target(archive))
        archived = {}
        for entry in manifest.committed:
            archived[entry.table] = archived.get(entry.table, 0) + entry.rows
        archive_size = sum(entry.bytes for entry in manifest.committed)
    transactions: sa.Table = versioning_manager.transaction_cls.__table__
    with engine.connect() as conn:
        sizes, note = _sizes(conn, targets)
        found = tuple(
            _table_stats(conn, target, transactions, models, moment, sizes, dry, archived)
            for target in targets
        )
        tx_count = int(
            conn.execute(sa.select(sa.func.count()).select_from(transactions)).scalar_one()
        )
    return HistoryStats(found, note, tx_count, dry_run.transactions_deleted, archive, archive_size)


def _live_table(target: VersionTable, models: Mapping[str, VersionedModel]) -> sa.Table | None:
    if target.label in models:
        return models[target.label].table
    name = target.name.removesuffix("_version")
    return target.table.metadata.tables.get(name)


def _count(conn: sa.Connection, table: sa.Table, *where: sa.ColumnElement[bool]) -> int:
    query = sa.select(sa.func.count()).select_from(table).where(*where)
    return int(conn.execute(query).scalar_one())


def _table_stats(
    conn: sa.Connection,
    target: VersionTable,
    transactions: sa.Table,
    models: Mapping[str, VersionedModel],
    now: datetime,
    sizes: Mapping[str, int],
    would_prune: Mapping[str, int],
    archived: Mapping[str, int] | None,
) -> TableStats:
    live = _live_table(target, models)
    key = list(target.key)
    per_record = (
        sa.select(sa.func.count().label("n")).select_from(target.table).group_by(*key).subquery()
    )
    histogram = [
        (int(n), int(records))
        for n, records in conn.execute(
            sa.select(per_record.c.n, sa.func.count())
            .group_by(per_record.c.n)
            .order_by(per_record.c.n)
        )
    ]
    records = sum(count for _, count in histogram)
    top = tuple(
        (tuple(row[:-1]), int(row[-1]))
        for row in conn.execute(
            sa.select(*key, sa.func.count().label("n"))
            .group_by(*key)
            .order_by(sa.desc("n"), *key)
            .limit(TOP)
        )
    )

    def since(days: int) -> float:
        cutoff = sa.bindparam(
            f"since_{days}", now - timedelta(days=days), type_=transactions.c.issued_at.type
        )
        joined = target.table.join(transactions, transactions.c.id == target.transaction_id)
        query = (
            sa.select(sa.func.count()).select_from(joined).where(transactions.c.issued_at >= cutoff)
        )
        return round(int(conn.execute(query).scalar_one()) / days, 2)

    return TableStats(
        table=target.name,
        model=target.label,
        live_records=_count(conn, live) if live is not None else 0,
        version_rows=sum(n * count for n, count in histogram),
        records=records,
        median_versions=_percentile(histogram, 0.5),
        p99_versions=int(_percentile(histogram, 0.99, nearest=True)),
        bytes=sizes.get(target.name),
        per_day_30=since(30),
        per_day_365=since(365),
        top=top,
        would_prune=would_prune.get(target.name, 0),
        archived_rows=None if archived is None else archived.get(target.name, 0),
    )


def _percentile(
    histogram: Sequence[tuple[int, int]], fraction: float, *, nearest: bool = False
) -> float:
    """The ``fraction`` quantile of values given as (value, how many), sorted by value.

    The median of an even count is the mean of the two middle values; ``nearest`` takes
    the nearest rank instead (the value at or above ``fraction`` of the count).
    """
    total = sum(count for _, count in histogram)
    if not total:
        return 0
    if nearest:
        rank = max(1, math.ceil(fraction * total))
        seen = 0
        for value, count in histogram:
            seen += count
            if seen >= rank:
                return value
    values: list[int] = []
    middle = {(total - 1) // 2, total // 2}
    seen = 0
    for value, count in histogram:
        values.extend(value for index in middle if seen <= index < seen + count)
        seen += count
    return sum(values) / len(values)


def _sizes(
    conn: sa.Connection, targets: Sequence[VersionTable]
) -> tuple[dict[str, int], str | None]:
    """Bytes of each version table with its indexes; and why not, if they are unknown."""
    names = [target.name for target in targets]
    if conn.dialect.name == "postgresql":
        found = {}
        for name in names:
            size = conn.execute(
                sa.text("SELECT pg_total_relation_size(CAST(:name AS regclass))"),
                {"name": conn.dialect.identifier_preparer.quote(name)},
            ).scalar_one()
            found[name] = int(size)
        return found, None
    if conn.dialect.name == "sqlite":
        try:
            rows = conn.execute(
                sa.text(
                    "SELECT m.tbl_name, SUM(s.pgsize) FROM dbstat AS s "
                    "JOIN sqlite_master AS m ON m.name = s.name GROUP BY m.tbl_name"
                )
            ).all()
        except sa.exc.OperationalError:
            conn.rollback()
            return {}, NO_DBSTAT
        by_table = {str(name): int(size) for name, size in rows}
        return {name: by_table.get(name, 0) for name in names}, None
    return {}, f"sizes are not measured on {conn.dialect.name}"


def daily_versions(engine: sa.Engine, policy: Policy) -> dict[str, list[tuple[date, int]]]:
    """Per version table, versions written per day (by their transaction's time), oldest
    first: what ``vestige stats --chart`` draws, summed up."""
    transactions: sa.Table = versioning_manager.transaction_cls.__table__
    found: dict[str, list[tuple[date, int]]] = {}
    with engine.connect() as conn:
        issued = transactions.c.issued_at
        day: sa.ColumnElement[Any] = (
            sa.func.date(issued) if conn.dialect.name == "sqlite" else sa.cast(issued, sa.Date)
        )
        for target in version_tables(policy):
            joined = target.table.join(transactions, transactions.c.id == target.transaction_id)
            query = (
                sa.select(day.label("day"), sa.func.count())
                .select_from(joined)
                .where(issued.is_not(None))
                .group_by(sa.literal_column("day"))
                .order_by(sa.literal_column("day"))
            )
            found[target.name] = [
                (value if isinstance(value, date) else date.fromisoformat(str(value)), int(n))
                for value, n in conn.execute(query)
            ]
    return found
