"""The history browser on every model shape (UUID and composite keys, joined and
single-table inheritance, many-to-many, keyword column names, JSON / Numeric / aware
times), and a transaction column it has never heard of, against Continuum's own versions.

The zoo declares its own versioned models, so it runs in a process of its own
(:mod:`tests.support.zoo_web`), once per database; each test asserts one (page, shape).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.project import ROOT

#: The pages tests.support.zoo_web reads (not imported: it declares the zoo's models).
PAGES = (
    "record page",
    "record paged",
    "context column",
    "diff page",
    "as-of page",
    "transaction page",
    "deleted page",
    "restore plan page",
)
SHAPES = (
    "uuid key",
    "composite key",
    "joined inheritance",
    "single-table inheritance",
    "many-to-many",
    "keyword columns",
    "json numeric tz",
)


@pytest.fixture(scope="module")
def zoo_pages() -> dict[str, dict[tuple[str, str], str | None]]:
    """The zoo's results per backend, each computed once, on first use."""
    return {}


def results_for(
    backend: str,
    cache: dict[str, dict[tuple[str, str], str | None]],
    db_url: str,
    tmp_path: Path,
) -> dict[tuple[str, str], str | None]:
    if backend not in cache:
        out = tmp_path / "zoo_web.json"
        run = subprocess.run(
            [sys.executable, "-m", "tests.support.zoo_web", db_url, str(out)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert run.returncode == 0, run.stderr[-4000:]
        rows: list[dict[str, Any]] = json.loads(out.read_text())
        cache[backend] = {(row["page"], row["shape"]): row["problem"] for row in rows}
    return cache[backend]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("page", PAGES)
def test_page_agrees_with_continuum(
    backend: str,
    db_url: str,
    tmp_path: Path,
    zoo_pages: dict[str, dict[tuple[str, str], str | None]],
    page: str,
    shape: str,
) -> None:
    results = results_for(backend, zoo_pages, db_url, tmp_path)
    assert (page, shape) in results, f"the zoo did not show {shape} on the {page}"
    assert results[(page, shape)] is None, results[(page, shape)]
