"""Reading one record's history out of a million version rows, on PostgreSQL and SQLite.

    ./scripts/bench history [--packages 50000] [--versions 20] [--samples 300]

Builds ``package_version`` with PACKAGES x VERSIONS rows (1,000,000 by default) with
set-based SQL, then times, for random packages:

- ``vestige.history.history`` (20 versions, with users and changes),
- ``as_of`` by transaction id and by timestamp,
- Continuum's own way: the versions, each ``.changeset`` and ``.transaction`` (N+1),
- ``all_versions(link=True)`` then each ``.transaction`` (the versions in one query,
  the transactions not),
- and, as the floor any call pays, a ``SELECT 1`` round trip,

and prints median and 95th percentile milliseconds, SQL statements per call and the ratio
to ``history``. It also runs ``history`` on one package with ten times as many versions
(the statement count must not change) and checks with EXPLAIN that the queries use the
version table's composite index (on PostgreSQL, EXPLAIN ANALYZE: its execution time is
the server's share of a call).

PostgreSQL comes from VESTIGE_BENCH_POSTGRES_URL (default: trust auth on 127.0.0.1:5432);
the benchmark creates and drops its own database there.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

import models
from vestige.history import as_of, history

DEFAULT_POSTGRES = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
EPOCH = datetime(2026, 1, 1)
USERS = 100
LONG_VERSIONS = 10  # the long record has this many times the versions of the others
COMPOSITE_INDEXES = (
    "ix_package_version_pk_transaction_id",
    "ix_package_version_pk_validity",
    "pk_package_version",
)


@dataclass(frozen=True)
class Shape:
    packages: int
    versions: int

    @property
    def transactions(self) -> int:
        # each transaction writes one version of `per_tx` packages
        return self.versions * self.per_tx

    @property
    def per_tx(self) -> int:
        return max(1, self.packages // 20)

    @property
    def long_id(self) -> int:
        return self.packages + 1


@dataclass
class Row:
    backend: str
    operation: str
    times_ms: list[float]
    statements: int

    @property
    def median(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def p95(self) -> float:
        return statistics.quantiles(self.times_ms, n=20)[-1]


def _series(dialect: str, name: str, first: int, last: int) -> str:
    """A FROM item yielding integers first..last in column ``name``."""
    if dialect == "postgresql":
        return f"generate_series({first}, {last}) AS {name}({name})"
    return (
        f"(WITH RECURSIVE s(v) AS (SELECT {first} UNION ALL SELECT v + 1 FROM s "
        f"WHERE v < {last}) SELECT v AS {name} FROM s) AS {name}_series"
    )


def populate(engine: sa.Engine, shape: Shape) -> None:
    """Users, transactions, live packages and their versions, all set-based."""
    dialect = engine.dialect.name
    models.Base.metadata.create_all(engine)
    epoch = "timestamp '2026-01-01 00:00:00'" if dialect == "postgresql" else "'2026-01-01'"

    def seconds(expr: str) -> str:
        if dialect == "postgresql":
            return f"{epoch} + ({expr}) * interval '1 second'"
        return f"datetime('2026-01-01', '+' || ({expr}) || ' seconds')"

    per_tx, versions = shape.per_tx, shape.versions
    # modulo written out: '%' is psycopg2's placeholder, and SQLite may lack mod()
    tx_of = f"(k * {per_tx} + (p - p / {per_tx} * {per_tx}) + 1)"
    user_of = f"t - t / {USERS} * {USERS} + 1"
    statements = [
        f"INSERT INTO maintainer (id, username, email) SELECT u, 'user' || u, "
        f"'user' || u || '@example.org' FROM {_series(dialect, 'u', 1, USERS)}",
        f'INSERT INTO "transaction" (id, issued_at, user_id) SELECT t, {seconds("t")}, '
        f"{user_of} FROM {_series(dialect, 't', 1, shape.transactions)}",
        f"INSERT INTO package (id, name, summary, created_at) SELECT p, 'pkg' || p, "
        f"'summary ' || {versions - 1}, {epoch} FROM {_series(dialect, 'p', 1, shape.packages)}",
        "INSERT INTO package_version (id, name, summary, created_at, transaction_id, "
        "end_transaction_id, operation_type) "
        f"SELECT p, 'pkg' || p, 'summary ' || k, {epoch}, {tx_of}, "
        f"CASE WHEN k < {versions - 1} THEN {tx_of} + {per_tx} END, "
        "CASE WHEN k = 0 THEN 0 ELSE 1 END "
        f"FROM {_series(dialect, 'p', 1, shape.packages)} "
        f"CROSS JOIN {_series(dialect, 'k', 0, versions - 1)}",
        # one package with LONG_VERSIONS times the versions, one per transaction
        f"INSERT INTO package (id, name, summary, created_at) VALUES ({shape.long_id}, "
        f"'long', 'summary', {epoch})",
        "INSERT INTO package_version (id, name, summary, created_at, transaction_id, "
        "end_transaction_id, operation_type) "
        f"SELECT {shape.long_id}, 'long', 'summary ' || t, {epoch}, t, "
        f"CASE WHEN t < {versions * LONG_VERSIONS} THEN t + 1 END, "
        "CASE WHEN t = 1 THEN 0 ELSE 1 END "
        f"FROM {_series(dialect, 't', 1, versions * LONG_VERSIONS)}",
    ]
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)
        if dialect == "postgresql":
            conn.exec_driver_sql(
                f"SELECT setval(pg_get_serial_sequence('transaction', 'id'), {shape.transactions})"
            )
    with engine.connect() as conn:
        # VACUUM too: left to autovacuum, it would run on the fresh million rows mid-timing
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
            "VACUUM ANALYZE" if dialect == "postgresql" else "ANALYZE"
        )


@contextmanager
def counting(engine: sa.Engine) -> Iterator[list[tuple[str, Any]]]:
    statements: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        statements.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def continuum_naive(session: Session, key: int) -> None:
    """Continuum's documented way: the versions, then each changeset and transaction."""
    versions = session.scalars(
        sa.select(models.PackageVersion)
        .where(models.PackageVersion.id == key)
        .order_by(models.PackageVersion.transaction_id)
    ).all()
    for version in versions:
        _ = (version.changeset, version.transaction.issued_at, version.transaction.user)


def continuum_linked(session: Session, key: int) -> None:
    """``all_versions(link=True)``: changesets free, each transaction still its own query."""
    versions = models.PackageVersion.all_versions(session, {"id": key}, desc=False, link=True)
    for version in versions:
        _ = (version.changeset, version.transaction.issued_at, version.transaction.user)


def measure(
    engine: sa.Engine,
    backend: str,
    name: str,
    call: Callable[[Session, int], object],
    keys: list[int],
) -> Row:
    times: list[float] = []
    counts: set[int] = set()
    for index, key in enumerate(keys):
        with Session(engine) as session:
            session.connection()  # check out the connection outside the timing
            with counting(engine) as statements:
                start = time.perf_counter()
                call(session, key)
                elapsed = time.perf_counter() - start
        if index >= 10:  # warm-up
            times.append(elapsed * 1000)
            counts.add(len(statements))
    if len(counts) != 1:
        raise SystemExit(f"{backend} {name}: statement count varies between calls: {counts}")
    return Row(backend, name, times, counts.pop())


def plan_of(engine: sa.Engine, call: Callable[[Session], object]) -> str:
    """The query plan of the statement ``call`` sends."""
    with Session(engine) as session, counting(engine) as statements:
        call(session)
    statement, parameters = statements[0]
    postgres = engine.dialect.name == "postgresql"
    prefix = "EXPLAIN (ANALYZE, BUFFERS) " if postgres else "EXPLAIN QUERY PLAN "
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(prefix + statement, parameters).all()
    return "\n".join(str(row[-1]) for row in rows)


def check_plan(backend: str, what: str, plan: str) -> None:
    print(f"--- {backend}: plan of {what}")
    print(plan)
    used = [name for name in COMPOSITE_INDEXES if name in plan]
    if not used:
        raise SystemExit(f"{backend} {what}: the plan uses none of {COMPOSITE_INDEXES}")
    print(f"--- uses {used[0]}: ok\n")


def run_backend(backend: str, url: str, shape: Shape, samples: int) -> list[Row]:
    engine = sa.create_engine(url)
    try:
        start = time.perf_counter()
        populate(engine, shape)
        with engine.connect() as conn:
            count = conn.scalar(sa.text("SELECT count(*) FROM package_version"))
        print(f"{backend}: {count:,} version rows built in {time.perf_counter() - start:.1f} s")
        rng = random.Random(7)
        keys = [rng.randint(1, shape.packages) for _ in range(samples + 10)]
        mid_tx = shape.transactions // 2
        mid_time = EPOCH + timedelta(seconds=mid_tx)
        rows = [
            measure(
                engine,
                backend,
                "baseline: SELECT 1 round trip",
                lambda s, k: s.execute(sa.text("SELECT 1")).scalar(),
                keys,
            ),
            measure(engine, backend, "history (20 versions)", _history, keys),
            measure(
                engine,
                backend,
                f"history ({shape.versions * LONG_VERSIONS} versions)",
                _history,
                [shape.long_id] * (min(samples, 50) + 10),
            ),
            measure(
                engine,
                backend,
                "as_of transaction id",
                lambda s, k: as_of(s, models.Package, k, mid_tx),
                keys,
            ),
            measure(
                engine,
                backend,
                "as_of timestamp",
                lambda s, k: as_of(s, models.Package, k, mid_time),
                keys,
            ),
            measure(
                engine,
                backend,
                "continuum: versions + changeset",
                continuum_naive,
                keys[: min(samples, 100) + 10],
            ),
            measure(
                engine,
                backend,
                "continuum: all_versions(link)",
                continuum_linked,
                keys[: min(samples, 100) + 10],
            ),
        ]
        key = keys[0]
        check_plan(backend, "history", plan_of(engine, lambda s: _history(s, key)))
        check_plan(
            backend,
            "as_of timestamp",
            plan_of(engine, lambda s: as_of(s, models.Package, key, mid_time)),
        )
        return rows
    finally:
        engine.dispose()


def _history(session: Session, key: int) -> object:
    versions = history(session, models.Package, key)
    assert versions and all(v.user for v in versions)
    return versions


@contextmanager
def postgres_database() -> Iterator[str]:
    server = sa.make_url(os.environ.get("VESTIGE_BENCH_POSTGRES_URL", DEFAULT_POSTGRES))
    name = f"vestige_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def print_table(rows: list[Row]) -> None:
    base = {row.backend: row.median for row in rows if row.operation == "history (20 versions)"}
    header = f"{'backend':<11}{'operation':<34}{'median ms':>10}{'p95 ms':>9}"
    header += f"{'statements':>12}{'x history':>11}"
    print(header)
    print("-" * len(header))
    for row in rows:
        ratio = row.median / base[row.backend]
        print(
            f"{row.backend:<11}{row.operation:<34}{row.median:>10.2f}{row.p95:>9.2f}"
            f"{row.statements:>12}{ratio:>11.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="./scripts/bench history", description=__doc__)
    parser.add_argument("--packages", type=int, default=50_000)
    parser.add_argument("--versions", type=int, default=20)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--backend", choices=["postgresql", "sqlite", "both"], default="both")
    args = parser.parse_args()
    shape = Shape(args.packages, args.versions)
    rows: list[Row] = []
    if args.backend in ("postgresql", "both"):
        with postgres_database() as url:
            rows += run_backend("postgresql", url, shape, args.samples)
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as directory:
            url = f"sqlite:///{Path(directory) / 'bench.db'}"
            rows += run_backend("sqlite", url, shape, args.samples)
    print(
        f"{shape.packages * shape.versions + shape.versions * LONG_VERSIONS:,} version rows, "
        f"{shape.transactions:,} transactions; {args.samples} random packages per operation "
        "(100 for Continuum's ways); a new session per call"
    )
    print_table(rows)


if __name__ == "__main__":
    main()
