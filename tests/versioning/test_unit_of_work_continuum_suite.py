"""Continuum's own tests (a chosen subset) pass with Vestige's unit of work wherever stock does.

Runs ``tests/continuum/suite.py --subset``: SQLAlchemy-Continuum 2.0.0's sdist (fetched
from PyPI once into ``.cache/continuum/``) with the validity strategy forced, once with
the stock unit of work and once with Vestige's, compared test by test. The whole suite
is ``./scripts/continuum-suite``.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.support.project import ROOT

SUITE_DB = {"sqlite": "sqlite", "postgresql": "postgres"}


def test_continuum_subset_has_no_regressions(backend: str, request: pytest.FixtureRequest) -> None:
    if backend == "postgresql":
        request.getfixturevalue("postgres_database")  # skips, or fails under CI, without one
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tests" / "continuum" / "suite.py"),
            "--subset",
            "--strategy",
            "validity",
            "--db",
            SUITE_DB[backend],
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "no regressions" in run.stdout
    counts = re.findall(r"-vestige: (\d+) passed, (\d+) failed", run.stdout)
    assert len(counts) == 1, run.stdout
    passed, failed = map(int, counts[0])
    assert passed >= 70 and failed == 0, run.stdout
