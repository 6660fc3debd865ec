"""Settings: one typed object, read from ``pyproject.toml`` and the environment.

``DATABASE_URL`` in the environment wins over ``[tool.vestige] database_url``; without
either, Vestige uses ``vestige.db`` (SQLite) beside ``pyproject.toml``.

Settings are read when a caller asks (:func:`load_settings`, :func:`database_url`) and
passed on explicitly: nothing in Vestige reads a ``pyproject.toml`` on its own, at import
time or later. The command line loads them once per command; an application loads them
once and hands the parts on, e.g. ``make_versioned(bulk_writes=settings.bulk_writes)``
and ``comparison_options(target_metadata, settings)`` in ``env.py``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast, get_args

import sqlalchemy as sa

from vestige.errors import ConfigError

DEFAULT_SQLITE_FILE = "vestige.db"
KNOWN_KEYS = frozenset(
    {"database_url", "models", "retention", "migrations", "bulk_writes", "archive_url"}
)
#: The environment variable naming the archive; it wins over ``[tool.vestige] archive_url``.
ARCHIVE_URL_ENV = "VESTIGE_ARCHIVE_URL"
MIGRATIONS_KEYS = frozenset({"on_drop_column"})

BulkWriteMode = Literal["warn", "raise", "version"]
"""What a bulk statement on a versioned model does (see :mod:`vestige.versioning.bulk`)."""
BULK_WRITE_MODES: tuple[str, ...] = get_args(BulkWriteMode)

OnDropColumn = Literal["keep", "drop"]
"""What autogenerate does to a version column whose model column is dropped."""
ON_DROP_COLUMN: tuple[str, ...] = get_args(OnDropColumn)


@dataclass(frozen=True)
class MigrationSettings:
    """``[tool.vestige.migrations]``.

    Attributes:
        on_drop_column: ``keep`` the ``*_version`` column of a dropped column (its
            history stays), or ``drop`` it too.
    """

    on_drop_column: OnDropColumn = "keep"


@dataclass(frozen=True)
class Settings:
    """Everything Vestige needs to know about a project.

    Attributes:
        project_root: The directory holding ``pyproject.toml`` (or the working directory).
        database_url: The SQLAlchemy URL of the application database.
        models: The importable module that declares the versioned models.
        bulk_writes: What bulk statements on versioned models do: ``warn``, ``raise`` or
            ``version``; hand it to ``make_versioned(bulk_writes=...)``.
        migrations: ``[tool.vestige.migrations]``.
        raw: The whole ``[tool.vestige]`` table; ``[tool.vestige.retention]`` is parsed
            from it by :func:`vestige.retention.load_policy`.
        archive_url: Where pruned history is archived and read back from
            (``VESTIGE_ARCHIVE_URL``, else ``[tool.vestige] archive_url``; ``None``: nowhere).
    """

    project_root: Path
    database_url: str
    models: str = "models"
    bulk_writes: BulkWriteMode = "warn"
    migrations: MigrationSettings = field(default_factory=MigrationSettings)
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
        environ: The environment (default ``os.environ``); ``DATABASE_URL`` and
            ``VESTIGE_ARCHIVE_URL`` are read from it.
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
    path = pyproject if pyproject is not None else find_pyproject()
    table = read_tool_table(path) if path is not None else {}
    unknown = sorted(set(table) - KNOWN_KEYS)
    if unknown:
        raise ConfigError(
            f"unknown key(s) in [tool.vestige]: {', '.join(unknown)}; "
            f"known keys are {', '.join(sorted(KNOWN_KEYS))}"
        )
    root = path.parent if path is not None else Path.cwd()
    return Settings(
        project_root=root,
        database_url=_resolve_url(database_url, environ, table, root),
        models=models or _string(table, "models") or "models",
        bulk_writes=_choice(table, "bulk_writes", BULK_WRITE_MODES, "warn"),
        migrations=_migration_settings(table),
        raw=table,
        archive_url=_archive_url(environ, table, root),
    )


def _archive_url(
    environ: Mapping[str, str] | None, table: Mapping[str, Any], root: Path
) -> str | None:
    """``VESTIGE_ARCHIVE_URL``, else ``[tool.vestige] archive_url`` (a relative directory
    there is relative to the project), else ``None``."""
    env = os.environ if environ is None else environ
    archive = _string(table, "archive_url")
    if archive and "://" not in archive and not Path(archive).is_absolute():
        archive = str(root / archive)
    return env.get(ARCHIVE_URL_ENV) or archive or None


def database_url(
    explicit: str | None = None,
    *,
    pyproject: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> str:
    """The application database's URL, resolved the one way Vestige resolves it.

    In order: ``explicit`` (e.g. Alembic's ``sqlalchemy.url``), ``DATABASE_URL``,
    ``[tool.vestige] database_url``, then ``vestige.db`` beside ``pyproject.toml``.
    ``env.py``, the sample data, the test kit and the command line all call this (or
    :func:`load_settings`, which calls it).

    Raises:
        ConfigError: The URL is not a SQLAlchemy URL (the message never shows it).

    Example:
        >>> database_url("sqlite:///app.db")
        'sqlite:///app.db'
    """
    path = pyproject if pyproject is not None else find_pyproject()
    table = read_tool_table(path) if path is not None else {}
    root = path.parent if path is not None else Path.cwd()
    return _resolve_url(explicit, environ, table, root)


def _resolve_url(
    explicit: str | None,
    environ: Mapping[str, str] | None,
    table: Mapping[str, Any],
    root: Path,
) -> str:
    env = os.environ if environ is None else environ
    url = (
        explicit
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
    return url


def _migration_settings(table: Mapping[str, Any]) -> MigrationSettings:
    section = table.get("migrations", {})
    if not isinstance(section, Mapping):
        raise ConfigError("[tool.vestige.migrations] must be a table")
    unknown = sorted(set(section) - MIGRATIONS_KEYS)
    if unknown:
        raise ConfigError(
            f"unknown key(s) in [tool.vestige.migrations]: {', '.join(unknown)}; "
            f"known keys are {', '.join(sorted(MIGRATIONS_KEYS))}"
        )
    on_drop = _choice(section, "on_drop_column", ON_DROP_COLUMN, "keep", "migrations.")
    return MigrationSettings(on_drop_column=cast(OnDropColumn, on_drop))


def _choice(
    table: Mapping[str, Any], key: str, allowed: tuple[str, ...], default: str, prefix: str = ""
) -> Any:
    value = table.get(key, default)
    if value not in allowed:
        raise ConfigError(
            f"[tool.vestige] {prefix}{key} must be one of {', '.join(allowed)}, not {value!r}"
        )
    return value


def _string(table: Mapping[str, Any], key: str) -> str | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"[tool.vestige] {key} must be a string, not {value!r}")
    return value
