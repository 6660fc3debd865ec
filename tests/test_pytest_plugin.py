"""With Vestige installed, plain ``pytest`` survives pytest-alembic's collection hook.

pytest-alembic 0.13's collector breaks on pytest 9 in any project with a
``tests/conftest.py``; ``vestige.pytest_plugin`` (a ``pytest11`` entry point) keeps it
from running. Each test runs pytest in a new project, with that plugin and without it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BROKEN = "'TestCollector' object has no attribute '_nodeid'"


def _project(tmp_path: Path) -> Path:
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "conftest.py").write_text("", encoding="utf-8")
    (tests / "test_it.py").write_text("def test_it():\n    assert True\n", encoding="utf-8")
    return tmp_path


def _pytest(project: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *options],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_plain_pytest_runs_with_pytest_alembic_installed(tmp_path: Path) -> None:
    result = _pytest(_project(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


@pytest.mark.skipif(pytest.version_tuple[0] < 9, reason="the hook works before pytest 9")
def test_without_the_plugin_pytest_alembic_breaks_collection(tmp_path: Path) -> None:
    result = _pytest(_project(tmp_path), "-p", "no:vestige")
    assert result.returncode != 0
    assert BROKEN in result.stdout + result.stderr
