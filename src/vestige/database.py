"""Vestige's own connections: SQLite files that must exist, foreign keys on, helpful hints.

:func:`open_engine` is how the command line opens the application's database. On SQLite
it refuses a file that does not exist (a mistyped path would otherwise become a new,
empty database) and turns foreign keys on for every connection (SQLite leaves them off
unless asked, so a restore could point at a deleted parent or an unknown user).
:func:`database_hint` ends a database error's line with what to check for that backend.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import sqlalchemy as sa

from vestige.errors import ConfigError

__all__ = [
    "NO_DATABASE",
    "SERVER_HINT",
    "SQLITE_HINT",
    "SQLITE_LOCKED_HINT",
    "SQLITE_READ_ONLY_HINT",
    "database_hint",
    "enable_sqlite_foreign_keys",
    "open_engine",
    "sqlite_file",
]

NO_DATABASE = (
    "no database at {path}; check DATABASE_URL (or [tool.vestige] database_url), or create "
    "it with alembic upgrade head"
)
SERVER_HINT = "check DATABASE_URL and that the server is running"
SQLITE_LOCKED_HINT = "another connection is writing to {path}; run this again when it has finished"
SQLITE_READ_ONLY_HINT = (
    "{path} is read-only here: this user needs write access to the file and its directory "
    "(SQLite writes a journal beside it), and the URL must not say mode=ro"
)
SQLITE_HINT = "check DATABASE_URL and that {path} is a SQLite database this user can open"


def sqlite_file(url: str | sa.URL) -> Path | None:
    """The file a SQLite URL opens, or None (not SQLite, or an in-memory database)."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database.startswith("file:") and parsed.query.get("uri") == "true":
        uri = urlsplit(database)
        mode = parsed.query.get("mode") or parse_qs(uri.query).get("mode", [""])[0]
        if mode == "memory" or uri.path in ("", ":memory:"):
            return None
        return Path(uri.path)
    if database in ("", ":memory:"):
        return None
    return Path(database)


def open_engine(url: str | sa.URL) -> sa.Engine:
    """An engine on an existing database, for Vestige's own work.

    Raises:
        ConfigError: A SQLite URL names a file that does not exist (:data:`NO_DATABASE`).
    """
    path = sqlite_file(url)
    if path is not None and not path.exists():
        raise ConfigError(NO_DATABASE.format(path=path))
    engine = sa.create_engine(url)
    if engine.dialect.name == "sqlite":
        enable_sqlite_foreign_keys(engine)
    return engine


def enable_sqlite_foreign_keys(engine: sa.Engine) -> None:
    """Run ``PRAGMA foreign_keys=ON`` on every new connection of a SQLite engine."""
    sa.event.listen(engine, "connect", _foreign_keys_on)


def _foreign_keys_on(dbapi_connection: Any, record: Any) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.execute("PRAGMA foreign_keys=ON")


def database_hint(url: str | sa.URL, error: BaseException) -> str:
    """What to check after ``error`` on the database at ``url``, for that backend."""
    try:
        path = sqlite_file(url)
        backend = sa.make_url(url).get_backend_name()
    except sa.exc.ArgumentError:
        return SERVER_HINT
    if backend != "sqlite":
        return SERVER_HINT
    where = str(path) if path is not None else "the in-memory database"
    text = str(getattr(error, "orig", None) or error).lower()
    if "locked" in text or "busy" in text:
        return SQLITE_LOCKED_HINT.format(path=where)
    if "readonly" in text or "read-only" in text:
        return SQLITE_READ_ONLY_HINT.format(path=where)
    return SQLITE_HINT.format(path=where)
