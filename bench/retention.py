"""Benchmark: the pruner against one raw DELETE of exactly the same rows.

./scripts/bench retention [--rows 1000000] [--small 100000] [--backends sqlite,postgresql]

For each backend and size it builds RECORDS x 10 versions of ``package_version`` (one
transaction per 10 records and version, issue times spread evenly over two years, every
tenth record deleted), clones the database twice, then

* raw:    one ``DELETE FROM package_version WHERE (id, transaction_id) IN (<the same
          prunable-rows query>)`` and one ``DELETE`` of the orphaned transactions;
* pruner: ``vestige.retention.prune`` (keep_days=365, keep_versions=2, batches of
          5,000) in a child process, whose peak RSS is read from ``getrusage``, while a
          writer commits versioned updates to other packages, one every 20 ms, and
          records each commit's latency; the same writer first runs with nothing else
          going on ("at rest"). SQLite files are in WAL mode, as a SQLite database with
          concurrent writers should be.

Both sides delete the same rows (checked: counts and a checksum of what stays).
PostgreSQL comes from VESTIGE_BENCH_POSTGRES_URL (default: postgres@127.0.0.1:5432).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
VERSIONS = 10
RECORDS_PER_TX = 10
SPAN_DAYS = 730
POLICY = {"keep_days": 365, "keep_versions": 2}
BATCH_SIZE = 5000
HOT_PACKAGES = 50
WRITER_PAUSE = 0.02
DEFAULT_SERVER = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
# named after this process: other runs may share the server
ROLES = ("base", "raw", "prune", "busy")
PG_DATABASES = tuple(f"vestige_bench_retention_{os.getpid()}_{role}" for role in ROLES)


def _models() -> Any:
    sys.path.insert(0, str(ROOT))
    import models

    return models


# --- building the data set ----------------------------------------------------------------


def _series(dialect: str, name: str, last: str) -> str:
    """A FROM clause producing ``name`` = 0 .. last (inclusive)."""
    if dialect == "postgresql":
        return f"generate_series(0, {last}) AS {name}({name})"
    return (
        f"(WITH RECURSIVE s(v) AS (SELECT 0 UNION ALL SELECT v + 1 FROM s WHERE v < {last}) "
        f"SELECT v AS {name} FROM s)"
    )


def build(engine: sa.Engine, records: int, now: datetime) -> None:
    """Fill an empty database with the benchmark history (set-based SQL, no ORM)."""
    models = _models()
    dialect = engine.dialect.name
    if dialect == "sqlite":
        # concurrent writers on SQLite need WAL: in rollback-journal mode any long read,
        # the pruner's planning query included, holds off every writer's commit
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    models.Base.metadata.create_all(engine)
    blocks = records // RECORDS_PER_TX
    transactions = blocks * VERSIONS
    start = now - timedelta(days=SPAN_DAYS)
    step = SPAN_DAYS * 86400 / transactions
    if dialect == "postgresql":
        issued = "CAST(:start AS timestamp) + g * :step * interval '1 second'"
    else:
        issued = (
            "strftime('%Y-%m-%d %H:%M:%S', :start_epoch + CAST(g * :step AS INTEGER), "
            "'unixepoch') || '.000000'"
        )
    tx_of = f"k * {blocks} + r / {RECORDS_PER_TX} + 1"
    statements = [
        f'INSERT INTO "transaction" (id, issued_at) SELECT g + 1, {issued} '
        f"FROM {_series(dialect, 'g', str(transactions - 1))}",
        "INSERT INTO transaction_changes (transaction_id, entity_name) "
        "SELECT id, 'Package' FROM \"transaction\"",
        "INSERT INTO package_version (id, name, summary, created_at, transaction_id, "
        "end_transaction_id, operation_type) "
        "SELECT r + 1, 'pkg-' || r, 'summary ' || k, :created, "
        f"{tx_of}, CASE WHEN k < {VERSIONS - 1} THEN {tx_of} + {blocks} END, "
        f"CASE WHEN k = 0 THEN 0 WHEN k = {VERSIONS - 1} AND r % 10 = 0 THEN 2 ELSE 1 END "
        f"FROM {_series(dialect, 'r', str(records - 1))} CROSS JOIN "
        f"{_series(dialect, 'k', str(VERSIONS - 1))}",
        "INSERT INTO package (id, name, summary, created_at) "
        f"SELECT id, name, summary, created_at FROM package_version WHERE transaction_id > "
        f"{transactions - blocks} AND operation_type != 2",
    ]
    if dialect == "postgresql":
        params: dict[str, Any] = {"start": start, "step": step, "created": start}
    else:
        epoch = int(start.replace(tzinfo=UTC).timestamp())
        params = {
            "start_epoch": epoch,
            "step": step,
            "created": f"{start:%Y-%m-%d %H:%M:%S}.000000",
        }
    with engine.begin() as conn:
        for statement in statements:
            used = {key: value for key, value in params.items() if f":{key}" in statement}
            conn.execute(sa.text(statement), used)
        if dialect == "postgresql":
            # ids were given explicitly: move the sequence past them for later inserts
            sequence = models.Transaction.__table__.c.id.default
            name = sequence.name if isinstance(sequence, sa.Sequence) else "transaction_id_seq"
            conn.execute(sa.text(f"SELECT setval('{name}', max(id)) FROM \"transaction\""))
    _hot_packages(engine, records)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE" if dialect == "postgresql" else "ANALYZE"))


def _hot_packages(engine: sa.Engine, records: int) -> None:
    """Packages outside the pruned set, for the concurrent writer (via Continuum)."""
    from sqlalchemy.orm import Session

    models = _models()
    with Session(engine) as session:
        for i in range(HOT_PACKAGES):
            session.add(models.Package(id=records + 1 + i, name=f"hot-{i}", summary="0"))
        session.commit()


# --- the two contenders --------------------------------------------------------------------


def _targets() -> tuple[Any, list[Any]]:
    from vestige.retention import parse_policy, version_tables

    return parse_policy(POLICY), version_tables(parse_policy(POLICY))


def raw_delete(url: str, now: datetime) -> dict[str, float]:
    """One DELETE for the version rows, one for the orphaned transactions (and changes)."""
    from vestige.retention.prunable import prunable_keys

    models = _models()
    _, targets = _targets()
    tx = models.Transaction.__table__
    changes = models.Base.metadata.tables["transaction_changes"]
    engine = sa.create_engine(url)
    target = next(t for t in targets if t.name == "package_version")
    keys = prunable_keys(target, tx, now).order_by(None).subquery()
    started = time.perf_counter()
    with engine.begin() as conn:
        result = conn.execute(
            sa.delete(target.table).where(
                sa.tuple_(target.table.c.id, target.table.c.transaction_id).in_(
                    sa.select(keys.c.id, keys.c.transaction_id)
                )
            )
        )
        deleted = result.rowcount
        if deleted < 0 and conn.dialect.name == "sqlite":
            # Python's sqlite3 counts no rows for a statement that starts with WITH, as
            # the commit-order ranking makes this DELETE; SQLite itself does.
            deleted = conn.execute(sa.text("SELECT changes()")).scalar_one()
    versions_done = time.perf_counter()
    unreferenced = [
        ~sa.exists().where(column == tx.c.id)
        for t in targets
        for column in (t.transaction_id, t.end_transaction_id)
    ]
    with engine.begin() as conn:
        orphans = sa.select(tx.c.id).where(*unreferenced)
        conn.execute(sa.delete(changes).where(changes.c.transaction_id.in_(orphans)))
        transactions = conn.execute(sa.delete(tx).where(*unreferenced)).rowcount
    done = time.perf_counter()
    engine.dispose()
    return {
        "versions_deleted": deleted,
        "versions_seconds": versions_done - started,
        "transactions_deleted": transactions,
        "transactions_seconds": done - versions_done,
    }


def child(url: str, now: datetime) -> None:
    """Run the pruner (this process is measured) and print its numbers as JSON."""
    from vestige.retention import TRANSACTION_PHASE, Progress, prune

    _models()
    policy, _ = _targets()
    engine = sa.create_engine(url)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    marks: dict[str, float] = {}

    def progress(event: Progress) -> None:
        if event.phase != TRANSACTION_PHASE:
            marks["transactions"] = time.perf_counter()  # the last one ends the version phase

    started = time.perf_counter()
    report = prune(engine, policy, batch_size=BATCH_SIZE, now=now, on_progress=progress)
    done = time.perf_counter()
    json.dump(
        {
            "versions_deleted": report.versions_deleted,
            "versions_seconds": marks["transactions"] - started,
            "transactions_deleted": report.transactions_deleted,
            "transactions_seconds": done - marks["transactions"],
            "rss_before_kb": rss_before,
            "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        },
        sys.stdout,
    )


class Writer(threading.Thread):
    """Commits a versioned update to a hot package every WRITER_PAUSE s; times each commit."""

    def __init__(self, url: str, records: int, limit: int | None = None) -> None:
        super().__init__(daemon=True)
        self.engine = sa.create_engine(url)
        self.records = records
        self.limit = limit
        self.stop = threading.Event()
        self.latencies: list[float] = []
        self.errors = 0

    def run(self) -> None:
        from sqlalchemy.orm import Session

        models = _models()
        n = 0
        with Session(self.engine) as session:
            while not self.stop.is_set() and (self.limit is None or n < self.limit):
                package = session.get(models.Package, self.records + 1 + n % HOT_PACKAGES)
                assert package is not None
                package.summary = f"write {n}"
                started = time.perf_counter()
                try:
                    session.commit()
                    self.latencies.append(time.perf_counter() - started)
                except sa.exc.OperationalError as exc:
                    session.rollback()
                    self.errors += 1
                    print(f"writer: {exc.orig}", file=sys.stderr)
                n += 1
                time.sleep(WRITER_PAUSE)
        self.engine.dispose()


def run_pruner(url: str, now: datetime, writer: Writer | None = None) -> dict[str, Any]:
    """Run the pruner in a child process (with ``writer`` writing meanwhile, if given)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.retention", "--child", url, "--now", now.isoformat()],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    if writer:
        writer.start()
    out, _ = process.communicate()
    if writer:
        writer.stop.set()
        writer.join()
    if process.returncode:
        raise SystemExit(f"the pruner failed with exit code {process.returncode}")
    result: dict[str, Any] = json.loads(out)
    return result


# --- databases per backend -----------------------------------------------------------------


@dataclass
class Databases:
    base: str
    raw: str
    prune: str
    busy: str

    def copies(self) -> tuple[str, str, str]:
        return self.raw, self.prune, self.busy


def sqlite_databases(directory: Path) -> Databases:
    return Databases(*(f"sqlite:///{directory / role}.db" for role in ROLES))


def clone_sqlite(dbs: Databases) -> None:
    source = sa.make_url(dbs.base).database
    for url in dbs.copies():
        shutil.copy(str(source), str(sa.make_url(url).database))


def postgres_databases(server: sa.URL) -> Databases:
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in PG_DATABASES:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{PG_DATABASES[0]}"'))
    admin.dispose()
    return Databases(
        *(server.set(database=name).render_as_string(hide_password=False) for name in PG_DATABASES)
    )


def clone_postgres(server: sa.URL) -> None:
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in PG_DATABASES[1:]:
            conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{PG_DATABASES[0]}"'))
    admin.dispose()


def drop_postgres(server: sa.URL) -> None:
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in PG_DATABASES:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def fingerprint(url: str, records: int) -> tuple[int, int, int]:
    """Count and sums of what stays of the benchmark records (hot packages excluded)."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT count(*), sum(id), sum(transaction_id) FROM package_version "
                "WHERE id <= :records"
            ),
            {"records": records},
        ).one()
    engine.dispose()
    return int(row[0]), int(row[1] or 0), int(row[2] or 0)


# --- one measurement -----------------------------------------------------------------------


def measure(backend: str, records: int, server: sa.URL, workdir: Path) -> dict[str, Any]:
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    if backend == "sqlite":
        dbs = sqlite_databases(workdir)
        for url in (dbs.base, *dbs.copies()):
            Path(str(sa.make_url(url).database)).unlink(missing_ok=True)
    else:
        dbs = postgres_databases(server)
    started = time.perf_counter()
    engine = sa.create_engine(dbs.base)
    build(engine, records, now)
    engine.dispose()
    built = time.perf_counter() - started
    if backend == "sqlite":
        clone_sqlite(dbs)
    else:
        clone_postgres(server)
    raw = raw_delete(dbs.raw, now)
    pruner = run_pruner(dbs.prune, now)
    at_rest = Writer(dbs.busy, records, limit=100)
    at_rest.start()
    at_rest.join()
    during = Writer(dbs.busy, records)
    busy = run_pruner(dbs.busy, now, during)
    same = fingerprint(dbs.raw, records) == fingerprint(dbs.prune, records)
    if backend == "postgresql":
        drop_postgres(server)
    return {
        "backend": backend,
        "records": records,
        "version_rows": records * VERSIONS,
        "build_seconds": built,
        "raw": raw,
        "pruner": pruner,
        "busy_pruner": busy,
        "same_rows": same and raw["versions_deleted"] == pruner["versions_deleted"],
        "rest_ms": [x * 1000 for x in at_rest.latencies],
        "during_ms": [x * 1000 for x in during.latencies],
        "writer_errors": during.errors,
    }


def _p(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _phase_table(results: list[dict[str, Any]], phase: str, what: str) -> list[str]:
    """Rows deleted and seconds, raw against pruner, for one phase (versions or transactions)."""
    lines = [
        f"| backend | version rows | {what} deleted | raw DELETE s | pruner s | pruner / raw | "
        "pruner rows/s | same rows |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        raw, pruner = r["raw"], r["pruner"]
        deleted, seconds = pruner[f"{phase}_deleted"], pruner[f"{phase}_seconds"]
        lines.append(
            f"| {r['backend']} | {r['version_rows']:,} | {deleted:,} | "
            f"{raw[f'{phase}_seconds']:.2f} | {seconds:.2f} | "
            f"{seconds / raw[f'{phase}_seconds']:.2f}x | {deleted / seconds:,.0f} | "
            f"{'yes' if r['same_rows'] else 'NO'} |"
        )
    return lines


def report(results: list[dict[str, Any]]) -> str:
    lines = [
        "Version rows (package_version); policy keep_days=365, keep_versions=2; batches of "
        f"{BATCH_SIZE:,}; the pruner alone, like the raw DELETE",
        "",
        *_phase_table(results, "versions", "versions"),
        "",
        "Orphaned transactions (with their transaction_changes rows)",
        "",
        *_phase_table(results, "transactions", "transactions"),
        "",
        "Pruner process memory, and a writer's commit latency (ms), at rest and while another "
        "copy is pruned",
        "",
        "| backend | version rows | RSS after imports MB | peak RSS MB | "
        "commit p50 / p99 at rest | commit p50 / p99 while pruning | commits while pruning | "
        "pruner s with the writer |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        pruner, busy = r["pruner"], r["busy_pruner"]
        rest, during = r["rest_ms"], r["during_ms"]
        failed = f" ({r['writer_errors']} failed)" if r["writer_errors"] else ""
        lines.append(
            f"| {r['backend']} | {r['version_rows']:,} | {pruner['rss_before_kb'] / 1024:.0f} | "
            f"{pruner['peak_rss_kb'] / 1024:.0f} | "
            f"{_p(rest, 0.5):.1f} / {_p(rest, 0.99):.1f} | "
            f"{_p(during, 0.5):.1f} / {_p(during, 0.99):.1f} | "
            f"{len(during)}{failed} | "
            f"{busy['versions_seconds'] + busy['transactions_seconds']:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="./scripts/bench retention", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="version rows (large run)")
    parser.add_argument("--small", type=int, default=100_000, help="version rows (small run)")
    parser.add_argument("--backends", default="postgresql,sqlite")
    parser.add_argument("--child", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--now", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, datetime.fromisoformat(args.now))
        return
    server = sa.make_url(os.environ.get("VESTIGE_BENCH_POSTGRES_URL", DEFAULT_SERVER))
    sizes = sorted({args.small, args.rows})
    results = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vestige-bench-") as tmp:
        for backend in args.backends.split(","):
            for rows in sizes:
                records = max(RECORDS_PER_TX, rows // VERSIONS // RECORDS_PER_TX * RECORDS_PER_TX)
                print(
                    f"{backend}: {records * VERSIONS:,} version rows ...",
                    file=sys.stderr,
                    flush=True,
                )
                result = measure(backend, records, server, Path(tmp))
                print(
                    f"  built in {result['build_seconds']:.1f} s; pruner "
                    f"{result['pruner']['versions_seconds']:.2f} s, raw "
                    f"{result['raw']['versions_seconds']:.2f} s",
                    file=sys.stderr,
                    flush=True,
                )
                results.append(result)
    print(report(results))
    print(
        f"\n(total {time.perf_counter() - started:.0f} s; command: ./scripts/bench retention "
        f"--rows {args.rows} --small {args.small} --backends {args.backends})"
    )
    if not all(r["same_rows"] for r in results):
        raise SystemExit("the pruner and the raw DELETE did not delete the same rows")


if __name__ == "__main__":
    main()
