"""Retention: policy -> prunable rows per version table -> batched deletes -> report.

One module of about 630 lines: :func:`prune` and the ``_Run`` it drives share one
connection's scratch tables and batch transactions, and archiving a batch
(:mod:`vestige.archive`) happens inside that batch's transaction; split, each half would
reach into the other's state.

::

    from vestige.retention import load_policy, prune

    report = prune(engine, load_policy(settings.raw), dry_run=True)

How a run goes, per version table (entity and many-to-many association tables):

1. the prunable rows (:mod:`vestige.retention.prunable`, one SQL query) are materialised as their
   keys into a temporary table, numbered oldest first in commit order within each record;
2. a real run deletes them in batches of ``batch_size`` rows, each batch its own
   committed transaction; a dry run only counts them.

Then ``transaction`` rows that no version row refers to any more are deleted the same
way. A transaction is *referenced* by a version row (written by it, or superseded by
it) or by a row of any other table with a ``transaction_id`` column (e.g. Continuum's
``activity``). ``transaction_changes`` and ``transaction_meta`` rows are not references:
they describe their transaction and are deleted with it, in the same batch.

With an archive (``archive=URL``), each batch is deleted with ``RETURNING`` (see
:mod:`vestige.retention.collecting`), written to the archive as Parquet and read back
while its database transaction is still open, and committed only then
(:mod:`vestige.archive.writer` says what a crash at each step leaves, and how the next
run settles it). The ``transaction`` rows the run deletes, and
their ``transaction_changes`` / ``transaction_meta`` rows, are archived the same way.
On PostgreSQL, batches are then taken month first (a month that never decreases along a
chain, see :func:`~vestige.retention.prunable.prunable_keys`), so that each writes a
file or two per table rather than one per month its records' histories span.

Why a rerun after an interruption ends in the same state: the prunable set is a function
of what stays (the newest versions, the times of transactions that stay), so deleting
part of it leaves the rest prunable; and within a record the oldest rows in commit order
go first, so an interrupted run leaves a chain without holes (R2, R7).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from contextlib import nullcontext, suppress
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy_continuum.plugins import TransactionChangesPlugin, TransactionMetaPlugin

from vestige.catalogue import association_tables, version_columns
from vestige.errors import ArchiveError, ConfigError
from vestige.registry import VersionedModel, versioned_models
from vestige.retention.collecting import Collector
from vestige.retention.lock import pruner_lock
from vestige.retention.policy import Policy
from vestige.retention.prunable import VersionTable, month_number, prunable_keys
from vestige.retention.report import (
    TRANSACTION_PHASE,
    ArchiveSummary,
    Progress,
    ProgressCallback,
    PruneReport,
    TableReport,
)
from vestige.retention.scratch import CreateTemporaryTableAs
from vestige.versioning.setup import versioning_manager

if TYPE_CHECKING:
    from vestige.archive import ArchiveWriter, Part, Staged
    from vestige.retention.collecting import Chunk

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "SQLITE_PAUSE",
    "TRANSACTION_PHASE",
    "Progress",
    "PruneReport",
    "TableReport",
    "prune",
    "version_tables",
]

DEFAULT_BATCH_SIZE = 5000
SQLITE_PAUSE = 0.1
NEEDS_ARCHIVE_EXTRA = (
    "archiving needs pyarrow, fsspec and duckdb ({missing} is missing): "
    "pip install 'vestige[archive]'"
)
ARCHIVE_STOPPED = (
    "stopped: the batch under way was not deleted, and every batch deleted before it is archived"
)
NO_MODELS = (
    "no versioned models are configured: import the models module (--models MODULE or "
    "[tool.vestige] models) before pruning"
)
MIXED_HIERARCHY = (
    "the policy gives {model} other rules than {root}, which it inherits from: retention "
    "rules apply to a whole inheritance hierarchy, whose versions are pruned together; "
    "set them on {root} ([tool.vestige.retention.models.{root}]) and not on {model}"
)
_KEYS_TABLE = "vestige_prune_keys_{}"
_ORPHANS_TABLE = "vestige_prune_orphans"


def version_tables(
    policy: Policy, models: Mapping[str, VersionedModel] | None = None
) -> list[VersionTable]:
    """Every version table with the rules that apply to it, sorted by table name.

    Args:
        policy: The retention policy; its model names are checked against ``models``.
        models: The versioned models (default: every configured one).

    Raises:
        ConfigError: The policy names a model that is not versioned, or gives a class
            other rules than the class it inherits from.
    """
    models = versioned_models() if models is None else models
    if not models:
        raise ConfigError(NO_MODELS)
    policy.check_models(models)
    names = version_columns(versioning_manager)
    tx_name, end_name = names.transaction_id, names.end_transaction_id
    op_name = names.operation_type

    def target(table: sa.Table, rules_name: str | None, association: bool) -> VersionTable:
        missing = {tx_name, end_name, op_name} - set(table.c.keys())
        if missing:
            raise ConfigError(
                f"{table.name} lacks column(s) {', '.join(sorted(missing))}; retention "
                "needs Continuum's validity strategy"
            )
        return VersionTable(
            table=table,
            key=tuple(column for column in table.primary_key.columns if column.name != tx_name),
            transaction_id=table.c[tx_name],
            end_transaction_id=table.c[end_name],
            operation_type=table.c[op_name],
            rules=policy.for_model(rules_name) if rules_name else policy.default,
            association=association,
            label=rules_name or table.name,
        )

    # The topmost versioned class each model inherits from (or its own name).
    roots = {
        name: model.root.__name__
        if models.get(model.root.__name__, model).model is model.root
        else name
        for name, model in models.items()
    }
    for name, root in roots.items():
        if policy.for_model(name) != policy.for_model(root):
            raise ConfigError(MIXED_HIERARCHY.format(model=name, root=root))
    found: dict[str, VersionTable] = {}
    for name, model in models.items():
        # a single-table subclass shares its base's version table, reported as the base
        shared = model.version_table is models[roots[name]].version_table
        label = roots[name] if shared else name
        found.setdefault(model.version_table.name, target(model.version_table, label, False))
    for association in association_tables(versioning_manager):
        table = association.version_table
        found.setdefault(table.name, target(table, None, True))
    return [found[name] for name in sorted(found)]


def prune(
    engine: sa.Engine,
    policy: Policy,
    *,
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    now: datetime | None = None,
    models: Mapping[str, VersionedModel] | None = None,
    on_progress: ProgressCallback | None = None,
    pause: float | None = None,
    archive: str | None = None,
) -> PruneReport:
    """Enforce ``policy`` on the history in ``engine``'s database.

    Args:
        engine: The application database.
        policy: What to keep.
        dry_run: Count what would be deleted and delete nothing.
        batch_size: Rows per committed batch.
        now: The time the policy's days count back from (default: now, naive UTC).
        models: The versioned models (default: every configured one).
        on_progress: Called after each committed batch, e.g. to draw a progress bar. It is
            only called when nothing is left uncommitted, so it may raise to stop the
            run there (``vestige prune`` does, on Ctrl-C and SIGTERM).
        pause: Seconds to wait after each committed batch, so that writers waiting for
            the database get their turn. Default: :data:`SQLITE_PAUSE` on SQLite, whose
            one writer lock goes to whoever asks first (a waiting writer polls every
            100 ms at most, and would otherwise starve), none on PostgreSQL, where a
            batch only locks the rows it deletes.
        archive: A directory or fsspec URL: copy every deleted row there as Parquet
            before its batch is committed (see :mod:`vestige.archive`). A dry run only
            checks that the archive can be read.

    Returns:
        Per version table what was (or would be) deleted and kept, and the count of
        ``transaction`` rows deleted.

    Raises:
        ConfigError: A bad batch size or a policy naming unknown models.
        PrunerBusy: Another pruner is running on this database (not for a dry run).
        ArchiveError: The archive cannot be read or written; the batch under way was
            not deleted.
    """
    if batch_size < 1:
        raise ConfigError(f"the batch size must be at least 1, not {batch_size}")
    started = time.perf_counter()
    if now is None:
        now = datetime.now(UTC)
    if now.tzinfo is not None:
        now = now.astimezone(UTC).replace(tzinfo=None)  # issued_at is naive UTC
    targets = version_tables(policy, models)
    transactions: sa.Table = versioning_manager.transaction_cls.__table__
    references, dependents = _transaction_tables(transactions, targets)
    notify = on_progress or (lambda progress: None)
    # a dry run only reads: it takes no lock (and makes no lock file)
    with nullcontext() if dry_run else pruner_lock(engine), engine.connect() as conn:
        if pause is None:
            pause = SQLITE_PAUSE if engine.dialect.name == "sqlite" else 0.0
        run = _Run(conn, transactions, now, batch_size, notify, pause)
        writer: ArchiveWriter | None = None
        summary: ArchiveSummary | None = None
        if archive is not None and dry_run:
            storage = _archive_package()
            storage.Manifest.load(storage.open_target(archive))  # it must at least read
            summary = ArchiveSummary(archive)
        elif archive is not None:
            try:
                writer = _archive_package().ArchiveWriter(
                    archive, policy=dataclasses.asdict(policy)
                )
                settled = writer.reconcile(conn, dict(transactions.metadata.tables))
            except ArchiveError as exc:
                raise ArchiveError(f"{exc}; nothing was deleted") from exc
            run.writer = writer
            summary = ArchiveSummary(archive, reconciled=settled.committed + settled.discarded)
        try:
            if dry_run:
                tables = [run.count(i, target) for i, target in enumerate(targets)]
                orphans = run.count_orphans(targets, references)
            else:
                tables = [run.delete(i, target) for i, target in enumerate(targets)]
                orphans = run.delete_orphans(targets, references, dependents)
        except ArchiveError as exc:
            raise ArchiveError(f"{exc}; {ARCHIVE_STOPPED}") from exc
        finally:
            run.drop_scratch()
        if writer is not None:
            writer.close()
    if writer is not None and summary is not None:
        summary = dataclasses.replace(
            summary, run=writer.run, rows=writer.rows, bytes=writer.bytes, files=writer.files
        )
    return PruneReport(dry_run, tuple(tables), orphans, time.perf_counter() - started, summary)


def _archive_package() -> Any:
    """:mod:`vestige.archive`, imported on first use: its extra is optional.

    Raises:
        ConfigError: pyarrow, fsspec or duckdb is not installed.
    """
    try:
        import vestige.archive
    except ImportError as exc:
        raise ConfigError(NEEDS_ARCHIVE_EXTRA.format(missing=exc.name)) from None
    return vestige.archive


def _transaction_tables(
    transactions: sa.Table, targets: Sequence[VersionTable]
) -> tuple[list[sa.Column[Any]], list[sa.Column[Any]]]:
    """Columns that refer to a transaction: (references that keep it, dependents)."""
    tx_name = versioning_manager.options["transaction_column_name"]
    dependent_tables = {
        plugin.model_class.__table__
        for plugin in versioning_manager.plugins
        if isinstance(plugin, TransactionChangesPlugin | TransactionMetaPlugin)
    }
    version = {target.table for target in targets}
    references: list[sa.Column[Any]] = []
    dependents: list[sa.Column[Any]] = []
    for table in transactions.metadata.tables.values():
        if table is transactions or table in version:
            continue
        column = table.c.get(tx_name)
        if column is None:
            column = next(
                (fk.parent for fk in table.foreign_keys if fk.column.table is transactions),
                None,
            )
        if column is None:
            continue
        (dependents if table in dependent_tables else references).append(column)
    return references, dependents


def _tuple(columns: Sequence[sa.ColumnElement[Any]]) -> sa.ColumnElement[Any]:
    return sa.tuple_(*columns) if len(columns) > 1 else columns[0]


class _Run:
    """One run's connection, scratch tables and batching."""

    def __init__(
        self,
        conn: sa.Connection,
        transactions: sa.Table,
        now: datetime,
        batch_size: int,
        notify: ProgressCallback,
        pause: float,
    ) -> None:
        self.conn = conn
        self.transactions = transactions
        self.now = now
        self.batch_size = batch_size
        self.notify = notify
        self.pause = pause
        self.scratch: list[sa.Table] = []
        self.keys: dict[str, sa.Table] = {}
        self.writer: ArchiveWriter | None = None  # archiving: rows deleted are collected
        self.collector = Collector(conn)

    # --- scratch tables ----------------------------------------------------------------

    def _materialise(
        self, name: str, query: sa.Select[Any], order: Sequence[str], *, index_all: bool = False
    ) -> tuple[sa.Table, int]:
        """Store ``query``'s rows in a temporary table, numbered 1.. by ``seq`` in ``order``.

        Returns:
            The temporary table and its row count.
        """
        rows = query.order_by(None).subquery("rows")
        numbered = sa.select(
            sa.func.row_number().over(order_by=[rows.c[column] for column in order]).label("seq"),
            *rows.c,
        )
        self.conn.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))
        create = CreateTemporaryTableAs(name, numbered)
        self.conn.execute(create)
        table = create.table
        self.scratch.append(table)
        self.conn.execute(sa.text(f"CREATE INDEX {name}_seq ON {name} (seq)"))
        if index_all:
            quote = self.conn.dialect.identifier_preparer.quote
            columns = ", ".join(quote(column) for column in rows.c.keys())  # noqa: SIM118
            self.conn.execute(sa.text(f"CREATE INDEX {name}_all ON {name} ({columns})"))
        if self.conn.dialect.name == "postgresql":
            # temporary tables are never auto-analysed; without statistics the planner
            # would hash-join every batch against the whole version table
            self.conn.execute(sa.text(f"ANALYZE {name}"))
        total = self.conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
        self.conn.commit()
        return table, int(total)

    def _batches(self, total: int) -> list[tuple[int, int]]:
        return [(lo, lo + self.batch_size) for lo in range(0, total, self.batch_size)]

    def _begin_batch(self) -> None:
        """Open a batch's transaction; on PostgreSQL, steer it to index lookups.

        A batch touches a few thousand rows of a large table; left alone, PostgreSQL's
        planner often merge- or hash-joins the batch's keys against the whole table
        (measured: 360 ms a batch instead of 20 ms on 1M versions). Nested loops over
        the primary key and the transaction indexes touch only the rows of the batch.
        """
        if self.conn.dialect.name == "postgresql":
            self.conn.execute(
                sa.text(
                    "SELECT set_config('enable_mergejoin', 'off', true), "
                    "set_config('enable_hashjoin', 'off', true)"
                )
            )

    def _end_batch(self, parts: Sequence[Part] = ()) -> None:
        """Commit the batch; with an archive, only once ``parts`` are written and read back."""
        staged: Staged | None = None
        if self.writer is not None and any(part.rows for part in parts):
            try:
                staged = self.writer.stage([part for part in parts if part.rows])
            except BaseException:
                self.conn.rollback()
                raise
        try:
            self.conn.commit()
        except BaseException:
            if staged is not None and self.writer is not None:
                self.writer.discard(staged)
            raise
        if staged is not None and self.writer is not None:
            self.writer.commit(staged)
        if self.pause:
            time.sleep(self.pause)

    def _deleting(
        self,
        statement: sa.Delete,
        table: sa.Table,
        into: list[Chunk],
        month: sa.ColumnElement[Any],
        params: Mapping[str, Any],
    ) -> int:
        """Run a DELETE with ``params``; with an archive, collect the deleted rows in
        ``into``, each with ``month``, the month (``YYYYMM``) of its transaction."""
        if self.writer is None:
            return int(self.conn.execute(statement, params).rowcount)
        return self.collector.delete(statement, table, into, month, params)

    def drop_scratch(self) -> None:
        """Drop this run's temporary tables (a dead connection drops them by itself)."""
        with suppress(sa.exc.DBAPIError):
            self.conn.rollback()
            for table in self.scratch:
                self.conn.execute(sa.text(f"DROP TABLE IF EXISTS {table.name}"))
            self.conn.commit()
        self.scratch.clear()

    # --- version tables -----------------------------------------------------------------

    def _row_id(self, target: VersionTable) -> sa.ColumnElement[Any] | None:
        """PostgreSQL's physical address of a version row, for batches that skip the index."""
        if self.conn.dialect.name != "postgresql":
            return None
        table = self.conn.dialect.identifier_preparer.format_table(target.table)
        return sa.literal_column(f"{table}.ctid")

    def _keys(self, index: int, target: VersionTable, *, dry_run: bool) -> tuple[sa.Table, int]:
        # oldest first in commit order within a record: a run stopped between batches
        # leaves every chain without a hole (R2, R7). With an archive on PostgreSQL,
        # month first (a month that never decreases along a chain, see prunable_keys): a
        # batch then spans one or two months, so it is written as a file or two per
        # table, not one per month its records' histories span. Not on SQLite: each
        # commit copies every page the batch touched into the WAL, and month-first
        # batches touch pages all over the table (measured at 1M rows: 49 to 51 s
        # against 45 to 47 s in record order, more files notwithstanding)
        by_month = self.writer is not None and not dry_run and self._row_id(target) is not None
        order = [*(["month"] if by_month else []), *(c.name for c in target.key), "position"]
        table, total = self._materialise(
            _KEYS_TABLE.format(index),
            prunable_keys(
                target,
                self.transactions,
                self.now,
                None if dry_run else self._row_id(target),
                by_month=by_month,
            ),
            order,
            index_all=dry_run,
        )
        self.keys[target.name] = table
        return table, total

    def _month_of(self, transaction: sa.Column[Any]) -> sa.ScalarSelect[Any]:
        """The month (``YYYYMM``) of the transaction a row's ``transaction`` column names
        (SQLite's ``RETURNING`` gives the deleted table's columns only, and subqueries)."""
        tx = self.transactions
        month = sa.select(month_number(tx.c.issued_at)).where(tx.c.id == transaction)
        return month.scalar_subquery()

    def _row_key(self, target: VersionTable) -> list[sa.Column[Any]]:
        return [*target.key, target.transaction_id]

    def _examined(self, target: VersionTable) -> int:
        count = sa.select(sa.func.count()).select_from(target.table)
        return int(self.conn.execute(count).scalar_one())

    def _oldest(self, target: VersionTable, *where: sa.ColumnElement[bool]) -> datetime | None:
        """The issue time of the oldest transaction a (kept) row of ``target`` refers to."""
        tx = self.transactions
        # walks ix_transaction_issued_at from the oldest and stops at the first match
        query = (
            sa.select(tx.c.issued_at)
            .where(
                tx.c.issued_at.is_not(None),
                sa.exists().where(target.transaction_id == tx.c.id, *where),
            )
            .order_by(tx.c.issued_at)
            .limit(1)
        )
        oldest: datetime | None = self.conn.execute(query).scalar()
        return oldest

    def _in_keys(self, target: VersionTable, keys: sa.Table) -> sa.ColumnElement[bool]:
        """``target``'s row has a match in ``keys`` (a correlated EXISTS)."""
        return sa.exists().where(
            *(keys.c[column.name] == column for column in self._row_key(target))
        )

    def count(self, index: int, target: VersionTable) -> TableReport:
        """A dry run over one version table: what would go, nothing deleted."""
        examined = self._examined(target)
        if not examined:
            return TableReport(target.name, 0, 0, 0, None)
        keys, total = self._keys(index, target, dry_run=True)
        self.notify(Progress(target.name, total, total))
        oldest = self._oldest(target, sa.not_(self._in_keys(target, keys)))
        self.conn.commit()
        return TableReport(target.name, examined, total, examined - total, oldest)

    def delete(self, index: int, target: VersionTable) -> TableReport:
        """Delete one version table's prunable rows in committed batches."""
        examined = self._examined(target)
        if not examined:
            self.notify(Progress(target.name, 0, 0))
            return TableReport(target.name, 0, 0, 0, None)
        keys, total = self._keys(index, target, dry_run=False)
        self.notify(Progress(target.name, 0, total))
        row_key = _tuple(self._row_key(target))
        key_columns = [keys.c[column.name] for column in self._row_key(target)]
        row_id = self._row_id(target)
        same_key = [keys.c[column.name] == column for column in self._row_key(target)]
        # each batch runs the same statements with its own bounds: compiled once
        in_batch = [keys.c.seq > sa.bindparam("lo"), keys.c.seq <= sa.bindparam("hi")]
        # by physical address (PostgreSQL), the key checked too: a row that moved since
        # the keys were stored is not matched, and is deleted by key after it
        by_address = None
        # with an archive, each deleted row comes with its transaction's month: from the
        # keys (which carry it when archiving on PostgreSQL, see _keys), or looked up
        from_keys: sa.ColumnElement[Any] = sa.null()
        if row_id is not None:
            by_address = sa.delete(target.table).where(
                row_id == keys.c.row_id, *same_key, *in_batch
            )
            if self.writer is not None:
                from_keys = keys.c.issued_month
        by_key = sa.delete(target.table).where(
            row_key.in_(sa.select(*key_columns).where(*in_batch))
        )
        looked_up = self._month_of(target.transaction_id)
        order = [column.name for column in self._row_key(target)]  # of the archive's rows
        deleted = 0
        for lo, hi in self._batches(total):
            bounds = {"lo": lo, "hi": hi}
            self._begin_batch()
            expected = min(hi, total) - lo
            count = 0
            rows: list[Chunk] = []
            if by_address is not None:
                count = self._deleting(by_address, target.table, rows, from_keys, bounds)
            if count < expected:
                count += self._deleting(by_key, target.table, rows, looked_up, bounds)
            parts: list[Part] = []
            if self.writer is not None and count:
                parts.append(self.collector.part(target.table, rows, order))
            self._end_batch(parts)
            deleted += count
            self.notify(Progress(target.name, min(hi, total), total))
        oldest = self._oldest(target)
        self.conn.commit()
        return TableReport(target.name, examined, deleted, examined - deleted, oldest)

    # --- transactions -------------------------------------------------------------------

    def _unreferenced(
        self,
        targets: Sequence[VersionTable],
        references: Sequence[sa.Column[Any]],
        *,
        kept_only: bool,
    ) -> list[sa.ColumnElement[bool]]:
        """Conditions on ``transaction`` for: no (kept, if ``kept_only``) row refers to it."""
        tx_id = self.transactions.c.id
        conditions: list[sa.ColumnElement[bool]] = []
        for target in targets:
            for column in (target.transaction_id, target.end_transaction_id):
                refers = [column == tx_id]
                if kept_only and target.name in self.keys:
                    refers.append(sa.not_(self._in_keys(target, self.keys[target.name])))
                conditions.append(sa.not_(sa.exists().where(*refers)))
        conditions.extend(sa.not_(sa.exists().where(column == tx_id)) for column in references)
        return conditions

    def count_orphans(
        self, targets: Sequence[VersionTable], references: Sequence[sa.Column[Any]]
    ) -> int:
        """Transactions nothing would refer to once the dry run's rows were gone."""
        unreferenced = self._unreferenced(targets, references, kept_only=True)
        query = sa.select(sa.func.count()).select_from(self.transactions).where(*unreferenced)
        total = int(self.conn.execute(query).scalar_one())
        self.conn.commit()
        self.notify(Progress(TRANSACTION_PHASE, total, total))
        return total

    def delete_orphans(
        self,
        targets: Sequence[VersionTable],
        references: Sequence[sa.Column[Any]],
        dependents: Sequence[sa.Column[Any]],
    ) -> int:
        """Delete, in committed batches, the transactions nothing refers to."""
        tx_id, issued_at = self.transactions.c.id, self.transactions.c.issued_at
        unreferenced = self._unreferenced(targets, references, kept_only=False)
        orphans = sa.select(tx_id).where(*unreferenced)
        if self.writer is not None:
            # each with its month, for the plugin rows' partitions (below), looked up once
            # they are found: OFFSET 0 keeps the search planned as without an archive (a
            # column of the transaction's own row led PostgreSQL to a serial plan, 2.5x
            # slower at 1M versions)
            found = orphans.offset(0).subquery("found")
            own = self.transactions.alias("own_tx")
            orphans = sa.select(found.c.id, month_number(own.c.issued_at).label("month"))
            orphans = orphans.join_from(found, own, own.c.id == found.c.id)
        # by id: transactions are numbered and timed at their first flush, so a batch
        # of ids spans a month or two (a file or two per table) without sorting by month
        candidates, total = self._materialise(_ORPHANS_TABLE, orphans, ["id"])
        self.notify(Progress(TRANSACTION_PHASE, 0, total))
        deleted = 0
        # each batch runs the same statements with its own bounds: compiled once
        in_batch = [candidates.c.seq > sa.bindparam("lo"), candidates.c.seq <= sa.bindparam("hi")]
        # checked again: the batch deletes only what is unreferenced right now; the rest
        # leave the batch (the candidates are this connection's own table, and a
        # rolled-back batch gets them back)
        still = sa.exists().where(tx_id == candidates.c.id, *unreferenced)
        recheck = sa.delete(candidates).where(*in_batch, sa.not_(still))
        batch = sa.select(candidates.c.id).where(*in_batch)
        # each table's rows with their transaction's month, looked up while the
        # transaction rows are still there (they go last)
        deletes: list[tuple[sa.Column[Any], sa.Delete, sa.ColumnElement[Any], list[str]]] = []
        for column in [*dependents, tx_id]:
            statement = sa.delete(column.table).where(column.in_(batch))
            month: sa.ColumnElement[Any]
            if column is tx_id:
                month = month_number(issued_at)
            elif self.writer is not None and self.conn.dialect.name == "postgresql":
                # joined to the candidates, which carry the month when archiving
                statement = sa.delete(column.table).where(column == candidates.c.id, *in_batch)
                month = candidates.c.month
            else:
                month = self._month_of(column)
            deletes.append((column, statement, month, self.collector.transaction_order(column)))
        for lo, hi in self._batches(total):
            bounds = {"lo": lo, "hi": hi}
            self._begin_batch()
            self.conn.execute(recheck, bounds)
            parts: list[Part] = []
            for column, statement, month, sorted_by in deletes:
                rows: list[Chunk] = []
                count = self._deleting(statement, column.table, rows, month, bounds)
                if column is tx_id:
                    deleted += count
                if self.writer is not None and count:
                    parts.append(self.collector.part(column.table, rows, sorted_by))
            self._end_batch(parts)
            self.notify(Progress(TRANSACTION_PHASE, min(hi, total), total))
        return deleted
