"""Write throughput of versioned models: unversioned, stock Continuum, Vestige, native.

The same model and data, written by five variants, each in its own process (Continuum's
listeners are global): ``unversioned``, ``stock-validity`` and ``stock-subquery``
(Continuum 2.0.0's own unit of work), ``vestige`` (validity strategy, Vestige's
set-based unit of work) and ``native`` (Continuum's PostgreSQL triggers, with hstore).
Workloads: one flush inserting 2,000 rows, one flush updating those 2,000 rows, and 200
commits of one updated row each. Every variant runs every workload several times, from a
fresh schema each round. Workload by workload, the variants take turns, in an order that
rotates every round, after a warm-up round that is not counted. The table shows each
variant's median time and its ratio to unversioned: the median, over the rounds, of
its time divided by unversioned's time for the same workload in the same round (paired,
because this kind of machine speeds up and slows down for seconds at a time). Garbage
left by the previous workload is collected before each timed one, so that a collection
it triggers is not charged to the next (the garbage a workload makes itself still is).

Usage::

    ./scripts/bench writes                 # both databases, 5 repetitions
    ./scripts/bench writes --json --repeat 3 --db sqlite
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
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
    """One variant's model on one database; times one workload per call of :meth:`run`.

    The workloads build on each other and run in the order of ``WORKLOADS``: the insert
    starts from a fresh schema, the update changes the rows it inserted, the commits
    change some of them again.
    """

    def __init__(self, variant: str, url: str) -> None:
        self.base, self.item = _declare(variant)
        self.engine = sa.create_engine(url)
        if variant == "native":
            with self.engine.begin() as conn:
                conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS hstore"))
        self.session: Session | None = None
        self.rows: list[Any] = []

    def run(self, workload: str) -> float:
        """Seconds taken by ``workload``; garbage left before it is collected untimed."""
        timed: Callable[[], None]
        if workload == "insert 2000":
            timed = self._fresh().commit
        elif workload == "update 2000":
            timed = self._change_all().commit
        else:
            keys = self._keys()
            timed = functools.partial(self._commit_one_by_one, keys)
        gc.collect()
        began = time.perf_counter()
        timed()
        return time.perf_counter() - began

    def _fresh(self) -> Session:
        if self.session is not None:
            self.session.close()
        self.base.metadata.drop_all(self.engine)
        self.base.metadata.create_all(self.engine)
        self.session = Session(self.engine)
        item = self.item
        self.session.add_all(item(name=f"item {i}", quantity=i, note="first") for i in range(ROWS))
        return self.session

    def _change_all(self) -> Session:
        assert self.session is not None
        self.rows = list(self.session.scalars(sa.select(self.item)).all())
        for row in self.rows:
            row.quantity += 1
            row.note = "second"
        return self.session

    def _keys(self) -> list[int]:
        return [row.id for row in self.rows[:COMMITS]]

    def _commit_one_by_one(self, keys: list[int]) -> None:
        session = self.session
        assert session is not None
        for key in keys:
            one = session.get(self.item, key)
            assert one is not None
            one.note = "third"
            session.commit()

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
        self.base.metadata.drop_all(self.engine)
        self.engine.dispose()


def _serve(variant: str, url: str) -> None:
    """The worker: for each workload named on stdin, its seconds as a JSON line."""
    workloads = _Workloads(variant, url)
    for line in sys.stdin:
        if line.strip() not in WORKLOADS:
            break
        print(json.dumps(workloads.run(line.strip())), flush=True)
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

    def run(self, workload: str) -> float:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{workload}\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            self.process.wait()
            assert self.process.stderr is not None
            raise SystemExit(f"error: {self.name} failed:\n{self.process.stderr.read()}")
        seconds: float = json.loads(line)
        return seconds

    def close(self) -> None:
        try:
            self.process.communicate("quit\n", timeout=120)
        finally:
            self.drop()


def measure(dbs: list[str], repeat: int) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """Run every variant on every database; medians and ratios to unversioned.

    Workload by workload, the variants take turns, in an order that rotates every
    round, after one warm-up round that is not counted. A variant's ratio is the median,
    over the rounds, of its time divided by unversioned's time for the same workload in
    the same round: measured seconds apart, so that a machine that slows down for a
    while slows both sides of each ratio alike.
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
                    for workload in WORKLOADS:
                        for variant in variants[turn:] + variants[:turn]:
                            seconds = workers[variant].run(workload)
                            if round_ > 0:  # round 0 warms up
                                times[variant][workload].append(seconds)
                    label = "warm-up" if round_ == 0 else f"{round_}/{repeat}"
                    print(f"  {db}: round {label} done", file=sys.stderr, flush=True)
            finally:
                for worker in workers.values():
                    worker.close()
            results[db] = {
                workload: {
                    variant: {
                        "median_s": round(statistics.median(times[variant][workload]), 5),
                        "ratio": round(
                            statistics.median(
                                mine / theirs
                                for mine, theirs in zip(
                                    times[variant][workload],
                                    times["unversioned"][workload],
                                    strict=True,
                                )
                            ),
                            2,
                        ),
                    }
                    for variant in variants
                }
                for workload in WORKLOADS
            }
    return results


def table(results: dict[str, dict[str, dict[str, dict[str, float]]]], repeat: int) -> str:
    """The results as a text table: median seconds and ratio to unversioned."""
    lines = [
        f"Median of {repeat} rounds; ratio = median of (time / unversioned time, same round).",
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
