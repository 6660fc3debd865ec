"""Settings: one typed object, read from ``pyproject.toml`` and the environment.

``DATABASE_URL`` in the environment wins over ``[tool.vestige] database_url``; without
either, Vestige uses ``vestige.db`` (SQLite) beside ``pyproject.toml``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from vestige.errors import ConfigError

DEFAULT_SQLITE_FILE = "vestige.db"
KNOWN_KEYS = frozenset(
    {"database_url", "models", "retention", "migrations", "bulk_writes", "archive_url"}
)
#: The environment variable naming the archive; it wins over ``[tool.vestige] archive_url``.
ARCHIVE_URL_ENV = "VESTIGE_ARCHIVE_URL"


@dataclass(frozen=True)
class Settings:
    """Everything Vestige needs to know about a project.

    Attributes:
        project_root: The directory holding ``pyproject.toml`` (or the working directory).
        database_url: The SQLAlchemy URL of the application database.
        models: The importable module that declares the versioned models.
        raw: The whole ``[tool.vestige]`` table, for sections other modules parse.
        archive_url: Where pruned history is archived and read back from
            (``VESTIGE_ARCHIVE_URL``, else ``[tool.vestige] archive_url``; ``None``: nowhere).
    """

    project_root: Path
    database_url: str
    models: str = "models"
    raw: Mapping[str, Any] = field(default_factory=dict)
    archive_url: str | None = None

    @property
    def safe_url(self) -> str:
        """The database URL with its password hidden, fit for printing."""
        return render_url(self.database_url)


def render_url(url: str | sa.URL) -> str:
    """Render a database URL for humans, never showing its password."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<unparseable database URL>"


def find_pyproject(start: Path | None = None) -> Path | None:
    """Return the nearest ``pyproject.toml`` at or above ``start`` (default: cwd)."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def read_tool_table(pyproject: Path) -> dict[str, Any]:
    """Return ``[tool.vestige]`` of a ``pyproject.toml``, or ``{}`` when absent."""
    try:
        with pyproject.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{pyproject} is not valid TOML: {exc}") from None
    table = data.get("tool", {}).get("vestige", {})
    if not isinstance(table, dict):
        raise ConfigError(f"[tool.vestige] in {pyproject} must be a table")
    return table


def load_settings(
    pyproject: Path | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    database_url: str | None = None,
    models: str | None = None,
) -> Settings:
    """Build :class:`Settings` from ``pyproject.toml``, the environment and overrides.

    Args:
        pyproject: The file to read; by default the nearest one above the working directory.
        environ: The environment (default ``os.environ``); ``DATABASE_URL`` is read from it.
        database_url: An explicit URL, winning over everything else.
        models: An explicit models module, winning over ``[tool.vestige] models``.

    Raises:
        ConfigError: ``[tool.vestige]`` has keys Vestige does not know, or values of the
            wrong type.

    Example:
        >>> settings = load_settings(database_url="sqlite://")
        >>> settings.models
        'models'
    """
    env = os.environ if environ is None else environ
    path = pyproject if pyproject is not None else find_pyproject()
    table = read_tool_table(path) if path is not None else {}
    unknown = sorted(set(table) - KNOWN_KEYS)
    if unknown:
        raise ConfigError(
            f"unknown key(s) in [tool.vestige]: {', '.join(unknown)}; "
            f"known keys are {', '.join(sorted(KNOWN_KEYS))}"
        )
    root = path.parent if path is not None else Path.cwd()
    url = (
        database_url
        or env.get("DATABASE_URL")
        or _string(table, "database_url")
        or f"sqlite:///{root / DEFAULT_SQLITE_FILE}"
    )
    try:
        sa.make_url(url)
    except sa.exc.ArgumentError:
        raise ConfigError(
            "the database URL is not a valid SQLAlchemy URL; "
            "expected e.g. postgresql+psycopg2://user@host/db or sqlite:///file.db"
        ) from None
    archive = _string(table, "archive_url")
    if archive and "://" not in archive and not Path(archive).is_absolute():
        archive = str(root / archive)  # in pyproject.toml: relative to the project
    archive = env.get(ARCHIVE_URL_ENV) or archive
    return Settings(
        project_root=root,
        database_url=url,
        models=models or _string(table, "models") or "models",
        raw=table,
        archive_url=archive or None,
    )


def _string(table: Mapping[str, Any], key: str) -> str | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"[tool.vestige] {key} must be a string, not {value!r}")
    return value
