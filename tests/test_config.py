"""Settings come from pyproject.toml and the environment, in a documented order."""

from __future__ import annotations

from pathlib import Path

import pytest

from vestige.config import load_settings, render_url
from vestige.errors import ConfigError


def _pyproject(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "pyproject.toml"
    path.write_text(body)
    return path


def test_environment_wins_over_pyproject(tmp_path: Path) -> None:
    path = _pyproject(tmp_path, '[tool.vestige]\ndatabase_url = "sqlite:///from-file.db"\n')
    settings = load_settings(path, {"DATABASE_URL": "postgresql://u@h/env"})
    assert settings.database_url == "postgresql://u@h/env"
    assert load_settings(path, {}).database_url == "sqlite:///from-file.db"


def test_default_is_a_sqlite_file_beside_pyproject(tmp_path: Path) -> None:
    settings = load_settings(_pyproject(tmp_path, ""), {})
    assert settings.database_url == f"sqlite:///{tmp_path / 'vestige.db'}"
    assert settings.models == "models"
    assert settings.project_root == tmp_path


def test_unknown_key_is_an_error_naming_it(tmp_path: Path) -> None:
    path = _pyproject(tmp_path, '[tool.vestige]\ndatabse_url = "sqlite://"\n')
    with pytest.raises(ConfigError, match=r"unknown key\(s\) in \[tool.vestige\]: databse_url"):
        load_settings(path, {})


def test_wrong_type_and_bad_url_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="models must be a string"):
        load_settings(_pyproject(tmp_path, "[tool.vestige]\nmodels = 3\n"), {})
    with pytest.raises(ConfigError, match="not a valid SQLAlchemy URL"):
        load_settings(_pyproject(tmp_path, ""), {"DATABASE_URL": "not a url"})


def test_invalid_toml_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_settings(_pyproject(tmp_path, "[tool.vestige\n"), {})


def test_urls_are_rendered_without_their_password() -> None:
    rendered = render_url("postgresql+psycopg2://app:s3cret@db:5432/app")
    assert "s3cret" not in rendered
    assert rendered == "postgresql+psycopg2://app:***@db:5432/app"
