"""Every reading of history, on every model shape, agrees with Continuum's own versions.

The model zoo (:mod:`tests.support.zoo_models`) declares its own versioned models, so
it runs in a process of its own (:mod:`tests.support.zoo_scenario`), once per database;
each test here asserts one (reading, shape) row of what that process found.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.project import run_module_json

SHAPES = (
    "uuid key",
    "composite key",
    "joined inheritance",
    "single-table inheritance",
    "many-to-many",
    "keyword columns",
    "json numeric tz",
)
READINGS = (
    "history",
    "history changes",
    "history limit 2",
    "as_of transaction",
    "as_of time",
    "diff",
    "changes",
    "changes(model=...)",
    "context",
    "changes(context=...)",
    "cli history --json",
    "cli --as-of --json",
    "cli --diff --json",
    "restore plan",
    "prune",
    "archive",
)


@pytest.fixture(scope="module")
def zoo_results(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[tuple[str, str], str | None]]:
    """The zoo's results per backend, each computed once, on first use."""
    return {}


def results_for(
    backend: str,
    cache: dict[str, dict[tuple[str, str], str | None]],
    db_url: str,
    tmp_path: Path,
) -> dict[tuple[str, str], str | None]:
    if backend not in cache:
        rows: list[dict[str, Any]] = run_module_json(
            "tests.support.zoo_scenario", db_url, tmp_path / "zoo.json"
        )
        cache[backend] = {(row["reading"], row["shape"]): row["problem"] for row in rows}
    return cache[backend]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reading", READINGS)
def test_reading_agrees_with_continuum(
    backend: str,
    db_url: str,
    tmp_path: Path,
    zoo_results: dict[str, dict[tuple[str, str], str | None]],
    reading: str,
    shape: str,
) -> None:
    results = results_for(backend, zoo_results, db_url, tmp_path)
    assert (reading, shape) in results, f"the zoo did not read {shape} with {reading}"
    assert results[(reading, shape)] is None, results[(reading, shape)]
