"""Benchmark: the pruner with and without ``--archive``, its memory, the archive's size, and
reading one record's history from the archive.

./scripts/bench archive [--rows 1000000] [--small 100000] [--backends sqlite,postgresql]
                        [--reads 200] [--repeats 3]

For each backend and size it builds the retention benchmark's history (``bench.retention``:
RECORDS x 10 versions of ``package_version``, issue times spread over two years, set-based
SQL), clones the database, then in child processes (peak RSS from ``getrusage``):

* plain:   ``vestige.retention.prune`` (keep_days=30, keep_versions=1: about 9 versions
           of 10 go; batches of 5,000);
* archive: the same with ``archive=`` a fresh directory (every deleted version,
           transaction and transaction_changes row written as Parquet and read back
           before its batch commits);

``--repeats`` times each (default 3), alternated, each on a copy of its own and
(PostgreSQL) after a CHECKPOINT, the fastest of each kind reported (peak RSS: the child's
VmHWM), and the median of the ratios of each pair of runs (a plain run and the archiving
run right after it: the machine's slow drifts cancel out in each pair).

Both must leave the same rows (count and checksums of what stays). Then the archive's
bytes against the bytes the deleted rows took in the database (table and indexes,
prorated by rows: PostgreSQL's relation size, SQLite's dbstat), and ``--reads`` random
records' ``history(..., archive=...)`` (database and archive together, through DuckDB):
p50 and p99 of the whole call and of the archive's part alone (``ArchiveReader.rows``).
PostgreSQL comes from VESTIGE_BENCH_POSTGRES_URL (default: postgres@127.0.0.1:5432).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.retention import DEFAULT_SERVER, VERSIONS, build, fingerprint

ROOT = Path(__file__).resolve().parent.parent
POLICY = {"keep_days": 30, "keep_versions": 1}
BATCH_SIZE = 5000
REPEATS = 3


def _roles(repeats: int) -> list[str]:
    """The databases of one measurement: the built one, then a copy per run."""
    return ["base", *(f"{kind}{i}" for i in range(repeats) for kind in ("plain", "archive"))]


def _pg_names(repeats: int) -> list[str]:
    return [f"vestige_bench_archive_{os.getpid()}_{role}" for role in _roles(repeats)]


def _models() -> Any:
    sys.path.insert(0, str(ROOT))
    import models

    return models


def child(url: str, now: datetime, archive: str | None) -> None:
    """Run the pruner (this process is measured) and print its numbers as JSON."""
    from vestige.retention import parse_policy, prune

    _models()
    if archive:
        import vestige.archive  # noqa: F401  (its imports count as imports, not as the run)
    engine = sa.create_engine(url)
    rss_before = _peak_rss_kb()
    started = time.perf_counter()
    report = prune(engine, parse_policy(POLICY), batch_size=BATCH_SIZE, now=now, archive=archive)
    seconds = time.perf_counter() - started
    json.dump(
        {
            "versions_deleted": report.versions_deleted,
            "transactions_deleted": report.transactions_deleted,
            "seconds": seconds,
            "rss_before_kb": rss_before,
            "peak_rss_kb": _peak_rss_kb(),
            "archive": report.archive.to_dict() if report.archive else None,
        },
        sys.stdout,
    )


def _peak_rss_kb() -> int:
    """This process's peak resident memory (VmHWM). Not ``getrusage``: Linux carries
    ``ru_maxrss`` over ``exec`` from the parent, which here reads the archive itself."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_child(url: str, now: datetime, archive: str | None) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.archive", "--child", url, "--now", now.isoformat()]
    if archive:
        command += ["--archive-dir", archive]
    out = subprocess.run(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
    ).stdout
    result: dict[str, Any] = json.loads(out)
    return result


def table_bytes(url: str) -> tuple[int, int]:
    """package_version's bytes (table and indexes) and rows, before pruning."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT count(*) FROM package_version")).scalar_one()
        if engine.dialect.name == "postgresql":
            size = conn.execute(
                sa.text("SELECT pg_total_relation_size('package_version')")
            ).scalar_one()
        else:
            size = conn.execute(
                sa.text(
                    "SELECT sum(pgsize) FROM dbstat WHERE name IN (SELECT name FROM "
                    "sqlite_master WHERE tbl_name = 'package_version')"
                )
            ).scalar_one()
    engine.dispose()
    return int(size), int(rows)


def reads(url: str, archive: str, records: int, count: int) -> dict[str, float]:
    """p50/p99 ms of history() across database and archive, and of the archive's part."""
    from sqlalchemy.orm import Session

    from vestige.archive import ArchiveReader
    from vestige.history import history

    models = _models()
    engine = sa.create_engine(url)
    rng = random.Random(18)
    ids = [rng.randint(1, records) for _ in range(count)]
    whole: list[float] = []
    part: list[float] = []
    naive = engine.dialect.name == "sqlite"
    with Session(engine) as session, ArchiveReader(archive, naive_times=naive) as reader:
        table = models.PackageVersion.__table__
        history(session, models.Package, ids[0], archive=reader)  # warm: DuckDB, statements
        versions = 0
        for record in ids:
            started = time.perf_counter()
            found = history(session, models.Package, record, archive=reader)
            whole.append(time.perf_counter() - started)
            versions += len(found)
            assert found and not found[0].pruned_before, record
            started = time.perf_counter()
            reader.rows(table, {"id": record})
            part.append(time.perf_counter() - started)
    engine.dispose()
    return {
        "history_p50_ms": _p(whole, 0.5) * 1000,
        "history_p99_ms": _p(whole, 0.99) * 1000,
        "archive_p50_ms": _p(part, 0.5) * 1000,
        "archive_p99_ms": _p(part, 0.99) * 1000,
        "versions_per_record": versions / len(ids),
    }


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _databases(backend: str, server: sa.URL, workdir: Path, repeats: int) -> list[str]:
    if backend == "sqlite":
        for leftover in workdir.glob("*.db*"):
            leftover.unlink()
        return [f"sqlite:///{workdir / role}.db" for role in _roles(repeats)]
    names = _pg_names(repeats)
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in names:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{names[0]}"'))
    admin.dispose()
    return [server.set(database=name).render_as_string(hide_password=False) for name in names]


def _clone(backend: str, urls: list[str], server: sa.URL) -> None:
    if backend == "sqlite":
        source = sa.make_url(urls[0]).database
        for url in urls[1:]:
            shutil.copy(str(source), str(sa.make_url(url).database))
            for suffix in ("-wal", "-shm"):
                if Path(f"{source}{suffix}").exists():
                    shutil.copy(f"{source}{suffix}", f"{sa.make_url(url).database}{suffix}")
        return
    names = [sa.make_url(url).database for url in urls]
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in names[1:]:
            conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{names[0]}"'))
    admin.dispose()


def _settle(backend: str, server: sa.URL) -> None:
    """Before a run on PostgreSQL: a checkpoint, so that no run pays for writing out what
    the clones or the run before it left in memory."""
    if backend == "sqlite":
        return
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text("CHECKPOINT"))
    admin.dispose()


def _drop(backend: str, server: sa.URL, urls: list[str]) -> None:
    if backend == "sqlite":
        return
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in (sa.make_url(url).database for url in urls):
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def measure(
    backend: str, rows: int, server: sa.URL, workdir: Path, read_count: int, repeats: int
) -> dict[str, Any]:
    records = rows // VERSIONS
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    urls = _databases(backend, server, workdir, repeats)
    try:
        engine = sa.create_engine(urls[0])
        build(engine, records, now)
        engine.dispose()
        _clone(backend, urls, server)
        size, table_rows = table_bytes(urls[0])
        # alternated, each on a copy of its own; the faster of each kind counts (the
        # machine is shared: a run can be slowed by others for seconds at a time)
        plains, archives = [], []
        for i in range(repeats):
            archive = workdir / f"archive-{backend}-{rows}-{i}"
            shutil.rmtree(archive, ignore_errors=True)
            _settle(backend, server)
            plains.append(run_child(urls[1 + 2 * i], now, None))
            _settle(backend, server)
            archives.append(run_child(urls[2 + 2 * i], now, str(archive)))
        plain = min(plains, key=lambda result: result["seconds"])
        archived = min(archives, key=lambda result: result["seconds"])
        same = all(fingerprint(url, records) == fingerprint(urls[1], records) for url in urls[2:])
        read = reads(urls[2], str(workdir / f"archive-{backend}-{rows}-0"), records, read_count)
    finally:
        _drop(backend, server, urls)
    return {
        "backend": backend,
        "rows": rows,
        "table_bytes": size,
        "table_rows": table_rows,
        "plain": plain,
        "archived": archived,
        "same": same,
        "reads": read,
        "runs": {
            "plain": [result["seconds"] for result in plains],
            "archive": [result["seconds"] for result in archives],
        },
    }


def report(results: list[dict[str, Any]]) -> str:
    lines = [
        f"Pruner without and with --archive; policy keep_days={POLICY['keep_days']}, "
        f"keep_versions={POLICY['keep_versions']}; batches of {BATCH_SIZE:,}; child processes",
        "",
        "| backend | version rows | versions deleted | transactions deleted | pruner s | "
        "with --archive s | archive / plain | median of pairs | every run s, plain / archive | "
        "RSS after imports MB plain / archive | peak RSS MB plain / archive | same rows |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---|",
    ]
    for r in results:
        plain, archived = r["plain"], r["archived"]
        pairs = zip(r["runs"]["plain"], r["runs"]["archive"], strict=True)
        median = statistics.median(archive / plain for plain, archive in pairs)
        lines.append(
            f"| {r['backend']} | {r['rows']:,} | {archived['versions_deleted']:,} | "
            f"{archived['transactions_deleted']:,} | {plain['seconds']:.2f} | "
            f"{archived['seconds']:.2f} | {archived['seconds'] / plain['seconds']:.2f}x | "
            f"{median:.2f}x | "
            f"{' '.join(f'{t:.2f}' for t in r['runs']['plain'])} / "
            f"{' '.join(f'{t:.2f}' for t in r['runs']['archive'])} | "
            f"{plain['rss_before_kb'] / 1024:.0f} / {archived['rss_before_kb'] / 1024:.0f} | "
            f"{plain['peak_rss_kb'] / 1024:.0f} / {archived['peak_rss_kb'] / 1024:.0f} | "
            f"{'yes' if r['same'] else 'NO'} |"
        )
    lines += [
        "",
        "Archive size: Parquet (zstd) against the database's bytes for the same version rows "
        "(package_version's table and indexes, prorated by rows)",
        "",
        "| backend | version rows | archived rows (all tables) | files | Parquet bytes | "
        "bytes per archived row | table bytes per row | Parquet / table |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        archive = r["archived"]["archive"]
        per_row = archive["bytes"] / max(1, archive["rows"])
        table_row = r["table_bytes"] / max(1, r["table_rows"])
        lines.append(
            f"| {r['backend']} | {r['rows']:,} | {archive['rows']:,} | {archive['files']:,} | "
            f"{archive['bytes']:,} | {per_row:.1f} | {table_row:.1f} | "
            f"{per_row / table_row:.2f} |"
        )
    lines += [
        "",
        "One record's history read across database and archive (ms)",
        "",
        "| backend | version rows | archived version rows | versions per record | "
        "history() p50 / p99 | archive part p50 / p99 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        read = r["reads"]
        lines.append(
            f"| {r['backend']} | {r['rows']:,} | {r['archived']['versions_deleted']:,} | "
            f"{read['versions_per_record']:.1f} | "
            f"{read['history_p50_ms']:.1f} / {read['history_p99_ms']:.1f} | "
            f"{read['archive_p50_ms']:.1f} / {read['archive_p99_ms']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="./scripts/bench archive", description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--reads", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--child", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--now", help=argparse.SUPPRESS)
    parser.add_argument("--archive-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, datetime.fromisoformat(args.now), args.archive_dir)
        return
    server = sa.make_url(os.environ.get("VESTIGE_BENCH_POSTGRES_URL", DEFAULT_SERVER))
    results = []
    with tempfile.TemporaryDirectory(prefix="vestige-bench-archive-") as tmp:
        for backend in args.backends.split(","):
            for rows in (args.small, args.rows):
                print(f"{backend}: {rows:,} version rows ...", file=sys.stderr, flush=True)
                results.append(measure(backend, rows, server, Path(tmp), args.reads, args.repeats))
    print(report(results))


if __name__ == "__main__":
    main()
