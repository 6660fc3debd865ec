"""Without PostgreSQL, its tests skip with the reason locally and fail the run in CI."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.project import ROOT

UNREACHABLE = "postgresql+psycopg2://postgres:hunter2@127.0.0.1:1/postgres"
TARGET = "tests/versioning/test_history_basics.py::test_insert_update_delete_write_versions"


def _pytest(ci: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VESTIGE_TEST_POSTGRES_URL": UNREACHABLE, "CI": ci}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", TARGET],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_locally_postgres_tests_skip_with_the_reason() -> None:
    result = _pytest(ci="")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed, 1 skipped" in result.stdout
    assert "PostgreSQL unreachable at postgresql+psycopg2://postgres:***@127.0.0.1:1/postgres" in (
        result.stdout
    )
    assert "hunter2" not in result.stdout + result.stderr


def test_in_ci_unreachable_postgres_fails_the_run() -> None:
    result = _pytest(ci="true")
    assert result.returncode == 1, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "CI=true requires PostgreSQL" in output
    assert "hunter2" not in output
