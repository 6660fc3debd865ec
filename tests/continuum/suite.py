"""Run SQLAlchemy-Continuum's own test suite with stock and with Vestige's unit of work.

Continuum's sdist ships its tests. This fetches it (``pip download``) into
``.cache/continuum/``, builds a virtualenv there holding Vestige and the suite's test
dependencies, and runs the suite with ``vestige_plugin`` loaded (which installs the unit
of work, and optionally forces the validity strategy) once per combination of database,
strategy and unit of work. It then compares the outcomes test by test: a test that
passes with the stock unit of work and fails with Vestige's is a regression, and the run
exits 1.

Usage (through ``scripts/continuum-suite``)::

    scripts/continuum-suite                       # everything: sqlite+postgres, shipped+validity
    scripts/continuum-suite --db sqlite --strategy validity --subset
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import time
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CACHE = ROOT / ".cache" / "continuum"
VERSION = "2.0.0"
SDIST_DIR = CACHE / f"sqlalchemy_continuum-{VERSION}"
VENV = CACHE / "venv"
TEST_DEPS = [
    "pytest>=7.0",
    "Flask>=2.0",
    "Flask-Login>=0.6",
    "Flask-SQLAlchemy>=3.0",
    "SQLModel>=0.0.24",
    "PyMySQL>=1.0",
]
# The chosen subset CI runs: the validity strategy's own tests, savepoints, inheritance,
# relationships, composite keys, and keys deleted and added again. Of the test classes
# generated for every combination of settings, variant 1 (validity, default column names)
# and variant 7 (validity, tx_id/end_tx_id) are taken.
_VARIANTS = (1, 7)
SUBSET = [
    "tests/test_validity_strategy.py",
    "tests/test_savepoints.py",
    "tests/test_composite_primary_key.py",
    "tests/inheritance/test_multi_level_inheritance.py",
    "tests/inheritance/test_join_table_inheritance.py::TestDeepJoinedTableInheritance",
    *(
        f"tests/{path}{n}"
        for path in (
            "inheritance/test_join_table_inheritance.py::TestJoinTableInheritance",
            "inheritance/test_single_table_inheritance.py::TestSingleTableInheritance",
            "relationships/test_many_to_many_relations.py::TestManyToManyRelationships",
            "relationships/test_one_to_many_relations.py::TestOneToManyRelationships",
            # Deleting and re-adding a key within one flush or transaction.
            "test_exotic_operation_combos.py::TestExoticOperationCombos",
        )
        for n in _VARIANTS
    ),
]
DATABASES = ("sqlite", "postgres")
STRATEGIES = ("shipped", "validity")
UOWS = ("stock", "vestige")
DEFAULT_POSTGRES = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


@dataclass
class Run:
    """One run of the suite: a database, a strategy, a unit of work, and its outcomes."""

    db: str
    strategy: str
    uow: str
    outcomes: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def name(self) -> str:
        return f"{self.db}-{self.strategy}-{self.uow}"

    def counts(self) -> Counter[str]:
        return Counter(self.outcomes.values())


def fetch() -> None:
    """Download and unpack the sdist and build the suite's virtualenv, once."""
    CACHE.mkdir(parents=True, exist_ok=True)
    if not (SDIST_DIR / "tests" / "__init__.py").is_file():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary",
             ":all:", f"sqlalchemy-continuum=={VERSION}", "-d", str(CACHE)],
            check=True,
        )  # fmt: skip
        with tarfile.open(CACHE / f"sqlalchemy_continuum-{VERSION}.tar.gz") as archive:
            archive.extractall(CACHE, filter="data")
    marker = VENV / ".vestige-ready"
    if not marker.is_file():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", "-e", str(ROOT),
             *TEST_DEPS],
            check=True,
        )  # fmt: skip
        marker.write_text("ok\n")


def _postgres_database(run: Run, server: sa.URL) -> str:
    name = f"vestige_continuum_{run.strategy}_{run.uow}_{uuid.uuid4().hex[:6]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return name


def _drop_postgres_database(name: str, server: sa.URL) -> None:
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def start(
    run: Run, paths: list[str], server: sa.URL, out: Path
) -> tuple[subprocess.Popen[bytes], str | None]:
    """Start one run of the suite in the background; return it and its database."""
    env = {
        **os.environ,
        "DB": run.db,
        "VESTIGE_UOW": run.uow,
        "VESTIGE_STRATEGY": run.strategy,
        "PYTHONPATH": str(HERE),
    }
    env.pop("DATABASE_URL", None)
    database = None
    if run.db == "postgres":
        database = _postgres_database(run, server)
        env["DATABASE_URL"] = server.set(database=database).render_as_string(hide_password=False)
    report = out / f"{run.name}.xml"
    command = [
        str(VENV / "bin" / "python"), "-m", "pytest", "-p", "vestige_plugin", "-q",
        "-p", "no:cacheprovider", "-o", "addopts=", f"--junitxml={report}", *paths,
    ]  # fmt: skip
    log = (out / f"{run.name}.log").open("wb")
    return subprocess.Popen(command, cwd=SDIST_DIR, env=env, stdout=log, stderr=log), database


def outcomes(report: Path) -> dict[str, str]:
    """Every test case of a JUnit XML report and whether it passed, failed or was skipped."""
    found: dict[str, str] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        test = f"{case.get('classname')}::{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            found[test] = FAILED
        elif case.find("skipped") is not None:
            found[test] = SKIPPED
        else:
            found[test] = PASSED
    return found


def execute(runs: list[Run], paths: list[str], parallel: int, out: Path) -> None:
    """Run the suite for every run, ``parallel`` at a time, filling in the outcomes.

    Each run's JUnit report and log go to ``out``.
    """
    server = sa.make_url(os.environ.get("VESTIGE_TEST_POSTGRES_URL", DEFAULT_POSTGRES))
    waiting = list(runs)
    active: list[tuple[Run, subprocess.Popen[bytes], str | None, float]] = []
    while waiting or active:
        while waiting and len(active) < parallel:
            run = waiting.pop(0)
            process, database = start(run, paths, server, out)
            active.append((run, process, database, time.monotonic()))
        run, process, database, began = active.pop(0)
        process.wait()
        run.seconds = time.monotonic() - began
        if database is not None:
            _drop_postgres_database(database, server)
        report = out / f"{run.name}.xml"
        if not report.is_file():
            raise SystemExit(f"error: {run.name} wrote no report; see {out / run.name}.log")
        run.outcomes = outcomes(report)
        print(f"  {run.name}: {_summary(run)} ({run.seconds:.0f} s)", flush=True)


def regressions(stock: Run, vestige: Run) -> list[str]:
    """Tests that pass with the stock unit of work and do not with Vestige's."""
    return sorted(
        test
        for test, outcome in stock.outcomes.items()
        if outcome == PASSED and vestige.outcomes.get(test) != PASSED
    )


def _summary(run: Run) -> str:
    counts = run.counts()
    return f"{counts[PASSED]} passed, {counts[FAILED]} failed, {counts[SKIPPED]} skipped"


def report(runs: list[Run]) -> int:
    """Print the comparison table; return the number of regressions."""
    by_key = {(run.db, run.strategy, run.uow): run for run in runs}
    print()
    print(f"{'database':<10} {'strategy':<9} {'stock':<34} {'vestige':<34} regressions")
    total = 0
    for db, strategy in dict.fromkeys((run.db, run.strategy) for run in runs):
        stock, vestige = by_key[(db, strategy, "stock")], by_key[(db, strategy, "vestige")]
        lost = regressions(stock, vestige)
        total += len(lost)
        print(f"{db:<10} {strategy:<9} {_summary(stock):<34} {_summary(vestige):<34} {len(lost)}")
        for test in lost:
            print(f"    REGRESSION {test}: {vestige.outcomes.get(test, 'missing')}")
        for test in sorted(t for t, o in stock.outcomes.items() if o == FAILED):
            print(f"    fails with stock too: {test} (vestige: {vestige.outcomes.get(test)})")
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default=",".join(DATABASES), help="sqlite,postgres")
    parser.add_argument("--strategy", default=",".join(STRATEGIES), help="shipped,validity")
    parser.add_argument("--subset", action="store_true", help="only the CI subset")
    parser.add_argument("--parallel", type=int, default=2, help="runs at a time (default 2)")
    parser.add_argument(
        "--stock-from",
        type=Path,
        metavar="DIR",
        help="reuse the stock runs' reports (<db>-<strategy>-stock.xml) from an earlier "
        "run's report directory instead of running stock again",
    )
    parser.add_argument("paths", nargs="*", help="test paths inside the suite (default: all)")
    args = parser.parse_args(argv)
    dbs = [db for db in args.db.split(",") if db]
    strategies = [strategy for strategy in args.strategy.split(",") if strategy]
    bad = sorted({*dbs} - {*DATABASES}) + sorted({*strategies} - {*STRATEGIES})
    if bad:
        parser.error(f"unknown value(s) {', '.join(bad)}; databases: {', '.join(DATABASES)}, "
                     f"strategies: {', '.join(STRATEGIES)}")  # fmt: skip
    paths = args.paths or (SUBSET if args.subset else ["tests"])
    fetch()
    runs = [Run(db, strategy, uow) for db in dbs for strategy in strategies for uow in UOWS]
    reused = [run for run in runs if args.stock_from and run.uow == "stock"]
    for run in reused:
        run.outcomes = outcomes(args.stock_from / f"{run.name}.xml")
    out = CACHE / "runs" / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    out.mkdir(parents=True)
    what = "the CI subset" if args.subset and not args.paths else " ".join(paths)
    print(f"SQLAlchemy-Continuum {VERSION} test suite, {what} (reports in {out}):", flush=True)
    for run in reused:
        print(f"  {run.name}: {_summary(run)} (reused from {args.stock_from})", flush=True)
    execute([run for run in runs if run not in reused], paths, max(1, args.parallel), out)
    lost = report(runs)
    print(f"\n{lost} regression(s)" if lost else "\nno regressions")
    return 1 if lost else 0


if __name__ == "__main__":
    raise SystemExit(main())
