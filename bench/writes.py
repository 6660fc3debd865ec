"""Write throughput of versioned models: unversioned, stock Continuum, Vestige, native.

The same model and data, written by five variants, each in its own process (Continuum's
listeners are global): ``unversioned``, ``stock-validity`` and ``stock-subquery``
(Continuum 2.0.0's own unit of work), ``vestige`` (validity strategy, Vestige's
set-based unit of work) and ``native`` (Continuum's PostgreSQL triggers, with hstore).
Workloads: one flush inserting 2,000 rows, one flush updating those 2,000 rows, and 200
commits of one updated row each. Every variant runs every workload several times on a
fresh schema, the variants taking turns (one repetition each, in a rotating order, after
a warm-up round that is not counted); the table shows the median and its ratio to
unversioned. Garbage left by the previous workload is collected before each timed one,
so that a collection it triggers is not charged to the next (the garbage a workload
makes itself still is).

Usage::

    ./scripts/bench writes                 # both databases, 5 repetitions
    ./scripts/bench writes --json --repeat 3 --db sqlite
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

ROWS = 2000
COMMITS = 200
VARIANTS = ("unversioned", "stock-validity", "stock-subquery", "vestige", "native")
WORKLOADS = ("insert 2000", "update 2000", "200 commits")
DATABASES = ("sqlite", "postgresql")
DEFAULT_POSTGRES = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


# --- one variant, in its own process ---------------------------------------------------


def _declare(variant: str) -> tuple[Any, type]:
    """Turn versioning on as ``variant`` does, then declare the model."""
    if variant != "unversioned":
        import sqlalchemy_continuum

        if variant == "vestige":
            from vestige.versioning import make_versioned

            make_versioned(user_cls=None, options={"strategy": "validity"})
        else:
            sqlalchemy_continuum.versioning_manager.uow_class = sqlalchemy_continuum.UnitOfWork
            sqlalchemy_continuum.make_versioned(
                user_cls=None,
                options={
                    "strategy": "subquery" if variant == "stock-subquery" else "validity",
                    "native_versioning": variant == "native",
                },
            )

    class Base(DeclarativeBase):
        pass

    class Item(Base):
        __tablename__ = "item"
        __versioned__: ClassVar[dict[str, Any]] = {}  # ignored when versioning is off

        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(sa.String(100))
        quantity: Mapped[int]
        note: Mapped[str | None] = mapped_column(sa.Text)

    sa.orm.configure_mappers()
    return Base, Item


class _Workloads:
    """One variant's model on one database, ready to time the three workloads."""

    def __init__(self, variant: str, url: str) -> None:
        self.base, self.item = _declare(variant)
        self.engine = sa.create_engine(url)
        if variant == "native":
            with self.engine.begin() as conn:
                conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS hstore"))

    def run(self) -> dict[str, float]:
        """One repetition on a fresh schema: seconds per workload."""
        item, times = self.item, {}
        self.base.metadata.drop_all(self.engine)
        self.base.metadata.create_all(self.engine)
        with Session(self.engine) as session:
            session.add_all(item(name=f"item {i}", quantity=i, note="first") for i in range(ROWS))
            gc.collect()
            began = time.perf_counter()
            session.commit()
            times["insert 2000"] = time.perf_counter() - began

            rows = session.scalars(sa.select(item)).all()
            for row in rows:
                row.quantity += 1
                row.note = "second"
            gc.collect()
            began = time.perf_counter()
            session.commit()
            times["update 2000"] = time.perf_counter() - began

            keys = [row.id for row in rows[:COMMITS]]
            gc.collect()
            began = time.perf_counter()
            for key in keys:
                one = session.get(item, key)
                assert one is not None
                one.note = "third"
                session.commit()
            times["200 commits"] = time.perf_counter() - began
        return times

    def close(self) -> None:
        self.base.metadata.drop_all(self.engine)
        self.engine.dispose()


def _serve(variant: str, url: str) -> None:
    """The worker: one repetition per "run" line on stdin, its times as a JSON line."""
    workloads = _Workloads(variant, url)
    for line in sys.stdin:
        if line.strip() != "run":
            break
        print(json.dumps(workloads.run()), flush=True)
    workloads.close()


# --- the driver --------------------------------------------------------------------------


def _database(db: str, variant: str, scratch: Path) -> tuple[str, Any]:
    """A fresh database URL for one variant, and how to drop it afterwards."""
    if db == "sqlite":
        path = scratch / f"{variant}.db"
        return f"sqlite:///{path}", lambda: path.unlink(missing_ok=True)
    server = sa.make_url(os.environ.get("VESTIGE_TEST_POSTGRES_URL", DEFAULT_POSTGRES))
    name = f"vestige_bench_{variant.replace('-', '_')}_{uuid.uuid4().hex[:6]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return server.set(database=name).render_as_string(hide_password=False), drop


class _Worker:
    """A variant's worker process (Continuum's listeners are global to a process)."""

    def __init__(self, db: str, variant: str, scratch: Path) -> None:
        self.name = f"{db} {variant}"
        url, self.drop = _database(db, variant, scratch)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.writes", "--worker", variant, url],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    def run(self) -> dict[str, float]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("run\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            self.process.wait()
            assert self.process.stderr is not None
            raise SystemExit(f"error: {self.name} failed:\n{self.process.stderr.read()}")
        times: dict[str, float] = json.loads(line)
        return times

    def close(self) -> None:
        try:
            self.process.communicate("quit\n", timeout=120)
        finally:
            self.drop()


def measure(dbs: list[str], repeat: int) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """Run every variant on every database; medians and ratios to unversioned.

    The variants take turns, one repetition each, in an order that rotates every round,
    after one warm-up round that is not counted: a machine that slows down for a while
    slows every variant alike, so the ratios are measured side by side.
    """
    results: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    with tempfile.TemporaryDirectory(prefix="vestige-bench-") as scratch:
        for db in dbs:
            variants = [v for v in VARIANTS if v != "native" or db == "postgresql"]
            workers: dict[str, _Worker] = {}
            times: dict[str, dict[str, list[float]]] = {
                variant: {workload: [] for workload in WORKLOADS} for variant in variants
            }
            try:
                for variant in variants:
                    workers[variant] = _Worker(db, variant, Path(scratch))
                for round_ in range(repeat + 1):
                    turn = round_ % len(variants)
                    for variant in variants[turn:] + variants[:turn]:
                        measured = workers[variant].run()
                        if round_ == 0:
                            continue  # warm-up
                        for workload in WORKLOADS:
                            times[variant][workload].append(measured[workload])
                    label = "warm-up" if round_ == 0 else f"{round_}/{repeat}"
                    print(f"  {db}: round {label} done", file=sys.stderr, flush=True)
            finally:
                for worker in workers.values():
                    worker.close()
            medians = {
                variant: {w: statistics.median(times[variant][w]) for w in WORKLOADS}
                for variant in variants
            }
            results[db] = {
                workload: {
                    variant: {
                        "median_s": round(values[workload], 5),
                        "ratio": round(values[workload] / medians["unversioned"][workload], 2),
                    }
                    for variant, values in medians.items()
                }
                for workload in WORKLOADS
            }
    return results


def table(results: dict[str, dict[str, dict[str, dict[str, float]]]], repeat: int) -> str:
    """The results as a text table: median seconds and ratio to unversioned."""
    lines = [
        f"Median of {repeat} runs; ratio = median / unversioned median (same database, same run).",
        "",
        f"{'database':<11}{'workload':<13}" + "".join(f"{variant:>20}" for variant in VARIANTS),
    ]
    for db, workloads in results.items():
        for workload, variants in workloads.items():
            cells = [
                f"{variants[v]['median_s']:.3f}s {variants[v]['ratio']:>5.2f}x"
                if v in variants
                else "-"
                for v in VARIANTS
            ]
            lines.append(f"{db:<11}{workload:<13}" + "".join(f"{c:>20}" for c in cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="./scripts/bench writes", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--repeat", type=int, default=5, help="repetitions (default 5)")
    parser.add_argument("--db", default=",".join(DATABASES), help="sqlite,postgresql")
    parser.add_argument("--worker", nargs=2, metavar=("VARIANT", "URL"),
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args(argv)
    if args.worker:
        _serve(*args.worker)
        return 0
    dbs = [db for db in args.db.split(",") if db]
    unknown = sorted(set(dbs) - set(DATABASES))
    if unknown:
        parser.error(f"--db takes {', '.join(DATABASES)}, not {', '.join(unknown)}")
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, not {args.repeat}")
    results = measure(dbs, args.repeat)
    print(json.dumps(results, indent=2) if args.json else table(results, args.repeat))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
