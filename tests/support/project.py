"""The project the tests run against: its root folder and Alembic configuration."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from alembic.config import Config

ROOT = Path(__file__).resolve().parents[2]


def alembic_config(db_url: str, script_location: Path | None = None) -> Config:
    """An Alembic config for this project, pointed at ``db_url``."""
    config = Config(toml_file=str(ROOT / "pyproject.toml"))
    config.set_main_option("sqlalchemy.url", db_url.replace("%", "%%"))
    if script_location is not None:
        config.set_main_option("script_location", str(script_location))
    return config


def run_module_json(module: str, db_url: str, out: Path, timeout: int = 600) -> Any:
    """Run ``python -m module DB_URL OUT`` in a process of its own and load the JSON it wrote.

    For model modules that declare versioned models of their own (the model zoo):
    Continuum's manager is global to a process.
    """
    run = subprocess.run(
        [sys.executable, "-m", module, db_url, str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    return json.loads(out.read_text())
