"""The project the tests run against: its root folder and Alembic configuration."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config

ROOT = Path(__file__).resolve().parents[2]


def alembic_config(db_url: str, script_location: Path | None = None) -> Config:
    """An Alembic config for this project, pointed at ``db_url``."""
    config = Config(toml_file=str(ROOT / "pyproject.toml"))
    config.set_main_option("sqlalchemy.url", db_url.replace("%", "%%"))
    if script_location is not None:
        config.set_main_option("script_location", str(script_location))
    return config
