"""Which file an SQLite URL opens, and which hint a database error gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from vestige.database import (
    SERVER_HINT,
    SQLITE_HINT,
    SQLITE_LOCKED_HINT,
    SQLITE_READ_ONLY_HINT,
    database_hint,
    sqlite_file,
)


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///app.db", Path("app.db")),
        ("sqlite:////srv/data/app.db", Path("/srv/data/app.db")),
        ("sqlite+aiosqlite:///app.db", Path("app.db")),
        ("sqlite:///file:/srv/app.db?mode=ro&uri=true", Path("/srv/app.db")),
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
        ("sqlite:///file:scratch?mode=memory&cache=shared&uri=true", None),
        ("postgresql+psycopg2://postgres@localhost/app", None),
    ],
)
def test_sqlite_file(url: str, path: Path | None) -> None:
    assert sqlite_file(url) == path


@pytest.mark.parametrize(
    ("url", "message", "hint"),
    [
        ("sqlite:///app.db", "database is locked", SQLITE_LOCKED_HINT.format(path="app.db")),
        (
            "sqlite:///app.db",
            "attempt to write a readonly database",
            SQLITE_READ_ONLY_HINT.format(path="app.db"),
        ),
        ("sqlite:///app.db", "file is not a database", SQLITE_HINT.format(path="app.db")),
        ("postgresql+psycopg2://db/app", "database is locked", SERVER_HINT),
        ("not a url", "anything", SERVER_HINT),
    ],
)
def test_database_hint(url: str, message: str, hint: str) -> None:
    assert database_hint(url, RuntimeError(message)) == hint
