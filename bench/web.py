"""The history browser's server-side page times at a million version rows.

    ./scripts/bench web [--packages 50000] [--versions 20] [--long 10000] [--samples 100]

Builds, with set-based SQL (``bench.history``'s tables: PACKAGES x VERSIONS rows of
``package_version``, 1,000,000 by default), one more package with LONG versions (10,000),
and deletes every 50th package (its newest version becomes a delete). Then it asks
``vestige.web`` for each page through Starlette's test client, SAMPLES times each with
varied records, transactions and positions, and prints the median and 95th percentile
milliseconds per page: what the server spends (queries, rendering), without a network.
The target is p95 < 100 ms.

PostgreSQL comes from VESTIGE_BENCH_POSTGRES_URL (default: trust auth on 127.0.0.1:5432);
the benchmark creates and drops its own database there.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

import models  # noqa: F401  (declares the versioned models the browser shows)
from bench.history import Shape, _series, populate, postgres_database

TARGET_MS = 100.0
DELETE_EVERY = 50


@dataclass
class Row:
    backend: str
    page: str
    times: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.times) * 1000

    @property
    def p95(self) -> float:
        return statistics.quantiles(self.times, n=20)[-1] * 1000


def add_long_record_and_deletes(engine: sa.Engine, shape: Shape, long: int) -> int:
    """One package with ``long`` versions (one per transaction), and deleted packages."""
    dialect = engine.dialect.name
    key = shape.long_id + 1
    epoch = "timestamp '2026-01-01 00:00:00'" if dialect == "postgresql" else "'2026-01-01'"
    every = DELETE_EVERY
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"INSERT INTO package (id, name, summary, created_at) VALUES ({key}, 'longest', "
            f"'summary {long}', {epoch})"
        )
        conn.exec_driver_sql(
            "INSERT INTO package_version (id, name, summary, created_at, transaction_id, "
            "end_transaction_id, operation_type) "
            f"SELECT {key}, 'longest', 'summary ' || t, {epoch}, t, "
            f"CASE WHEN t < {long} THEN t + 1 END, CASE WHEN t = 1 THEN 0 ELSE 1 END "
            f"FROM {_series(dialect, 't', 1, long)}"
        )
        # the newest version of every 50th package becomes its delete
        conn.exec_driver_sql(
            "UPDATE package_version SET operation_type = 2 WHERE end_transaction_id IS NULL "
            f"AND id - id / {every} * {every} = 0 AND id <= {shape.packages}"
        )
        conn.exec_driver_sql(
            f"DELETE FROM package WHERE id - id / {every} * {every} = 0 AND id <= {shape.packages}"
        )
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
            "VACUUM ANALYZE" if dialect == "postgresql" else "ANALYZE"
        )
    return key


def run_backend(backend: str, url: str, shape: Shape, long: int, samples: int) -> list[Row]:
    from starlette.testclient import TestClient

    from vestige.web import create_app

    engine = sa.create_engine(url)
    started = time.perf_counter()
    populate(engine, shape)
    long_key = add_long_record_and_deletes(engine, shape, long)
    print(f"{backend}: built in {time.perf_counter() - started:.0f} s", flush=True)
    rng = random.Random(17)
    transactions = shape.transactions

    def package() -> int:
        found = rng.randint(1, shape.packages)
        return found + 1 if found % DELETE_EVERY == 0 else found

    def position(key: int, tx: int) -> str:
        return json.dumps([tx, str(key)])

    pages: dict[str, Callable[[], str]] = {
        "models": lambda: "/",
        "model: newest versions": lambda: "/models/Package",
        "model: versions, a deep page": lambda: (
            f"/models/Package?before={position(shape.packages, rng.randint(2, transactions))}"
        ),
        "model: deleted records": lambda: "/models/Package/deleted",
        "record: 20 versions": lambda: f"/models/Package/record?key.id={package()}",
        f"record: {long:,} versions, newest": lambda: f"/models/Package/record?key.id={long_key}",
        f"record: {long:,} versions, deep page": lambda: (
            f"/models/Package/record?key.id={long_key}"
            f"&before={position(long_key, rng.randint(51, long))}"
        ),
        f"diff: 2 of {long:,} versions": lambda: (
            f"/models/Package/diff?key.id={long_key}&a={rng.randint(1, long)}"
            f"&b={rng.randint(1, long)}"
        ),
        "transaction": lambda: f"/transactions/{rng.randint(1, transactions)}",
        "search: newest transactions": lambda: "/search",
        "search: by user and model": lambda: f"/search?user={rng.randint(1, 100)}&model=Package",
    }
    rows: list[Row] = []
    app = create_app(engine, authorize=lambda request, permission: True)
    with TestClient(app) as client:
        for name, path in pages.items():
            for _ in range(3):  # warm-up: caches of statements and templates
                assert client.get(path()).status_code == 200
            times = []
            for _ in range(samples):
                address = path()
                begin = time.perf_counter()
                response = client.get(address)
                times.append(time.perf_counter() - begin)
                assert response.status_code == 200, (address, response.text[:500])
            rows.append(Row(backend, name, times))
            print(f"  {name}: p95 {rows[-1].p95:.1f} ms", flush=True)
    engine.dispose()
    return rows


def print_table(rows: list[Row]) -> None:
    header = f"{'backend':<11}{'page':<34}{'p50 ms':>9}{'p95 ms':>9}  {'p95 < 100 ms':<12}"
    print(header)
    print("-" * len(header))
    for row in rows:
        verdict = "yes" if row.p95 < TARGET_MS else "NO"
        print(f"{row.backend:<11}{row.page:<34}{row.median:>9.1f}{row.p95:>9.1f}  {verdict:<12}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="./scripts/bench web", description=__doc__)
    parser.add_argument("--packages", type=int, default=50_000)
    parser.add_argument("--versions", type=int, default=20)
    parser.add_argument("--long", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--backend", choices=["postgresql", "sqlite", "both"], default="both")
    args = parser.parse_args()
    warnings.simplefilter("ignore", DeprecationWarning)  # the test client's own notices
    shape = Shape(args.packages, args.versions)
    rows: list[Row] = []
    if args.backend in ("postgresql", "both"):
        with postgres_database() as url:
            rows += run_backend("postgresql", url, shape, args.long, args.samples)
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as directory:
            url = f"sqlite:///{Path(directory) / 'bench.db'}"
            rows += run_backend("sqlite", url, shape, args.long, args.samples)
    total = shape.packages * shape.versions + shape.versions * 10 + args.long
    print(
        f"{total:,} version rows, {shape.transactions:,} transactions, every "
        f"{DELETE_EVERY}th package deleted; {args.samples} requests per page, varied "
        "records and positions; server-side time through Starlette's test client"
    )
    print_table(rows)


if __name__ == "__main__":
    main()
