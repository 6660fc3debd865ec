"""How the command line opens the database: an SQLite file must exist, foreign keys are
enforced on SQLite as on PostgreSQL, and errors end with a hint that fits the backend."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from sqlalchemy.orm import Session

import models
from tests.support.project import ROOT
from vestige.cli import app
from vestige.config import render_url
from vestige.database import (
    NO_DATABASE,
    SERVER_HINT,
    SQLITE_LOCKED_HINT,
    SQLITE_READ_ONLY_HINT,
)
from vestige.retention.lock import LOCK_SUFFIX
from vestige.testing import fast_sqlite  # noqa: F401 (a fixture)

pytestmark = pytest.mark.usefixtures("fast_sqlite")

COMMANDS = [
    ["history", "Package", "1"],
    ["restore", "Package", "1", "--to", "1", "--yes"],
    ["check"],
    ["prune", "--dry-run"],
    ["prune", "--yes"],
]


def vestige(url: str, *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env={"DATABASE_URL": url})


@pytest.fixture(autouse=True)
def _in_project(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def _rows(engine: sa.Engine) -> dict[str, list[tuple[object, ...]]]:
    metadata = sa.MetaData()
    metadata.reflect(engine)
    with engine.connect() as connection:
        return {
            name: sorted(map(tuple, connection.execute(sa.select(table))), key=repr)
            for name, table in metadata.tables.items()
        }


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: " ".join(command))
def test_a_mistyped_database_is_one_line_and_not_created(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, command: list[str]
) -> None:
    if backend == "sqlite":
        typo = tmp_path / "typo.db"
        result = vestige(f"sqlite:///{typo}", *command)
        assert (result.exit_code, result.stderr) == (
            2,
            "error: " + NO_DATABASE.format(path=typo) + "\n",
        )
        assert list(tmp_path.iterdir()) == []  # neither typo.db nor typo.db.prune.lock
        return
    server: sa.URL = request.getfixturevalue("postgres_database")
    typo_url = server.set(database=f"{server.database}_typo")
    result = vestige(typo_url.render_as_string(hide_password=False), *command)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: database error at ")
    assert result.stderr.endswith(f"; {SERVER_HINT}\n") or "nothing past" in result.stderr


def _package_with_release(engine: sa.Engine) -> tuple[int, int, int]:
    """A package and its release, then the release deleted, then the package.

    Returns:
        (package id, release id, the transaction that wrote the release).
    """
    with Session(engine) as session:
        maintainer = models.Maintainer(username="ann", email="ann@example.org")
        package = models.Package(name="requests", summary="HTTP")
        session.add_all([maintainer, package])
        session.commit()
        release = models.Release(package=package, version="1.0")
        session.add(release)
        session.commit()
        written = session.scalars(
            sa.select(models.ReleaseVersion.transaction_id).where(
                models.ReleaseVersion.id == release.id
            )
        ).one()
        ids = package.id, release.id, written
        session.delete(release)
        session.commit()
        session.delete(package)
        session.commit()
    return ids


def test_foreign_keys_hold_for_restores(schema_engine: sa.Engine, db_url: str) -> None:
    package_id, release_id, written = _package_with_release(schema_engine)
    before = _rows(schema_engine)

    orphan = vestige(db_url, "restore", "Release", str(release_id), "--to", str(written), "--yes")
    assert orphan.exit_code == 1
    assert orphan.stderr.startswith(f"error: cannot restore Release {release_id}: the database")
    assert _rows(schema_engine) == before

    unknown_user = vestige(
        db_url, "restore", "Package", str(package_id), "--to", str(written), "--user", "999", "-y"
    )
    assert unknown_user.exit_code == 1
    assert unknown_user.stderr.startswith(f"error: cannot restore Package {package_id}:")
    assert _rows(schema_engine) == before


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_locked_sqlite_file_gets_a_sqlite_hint(schema_engine: sa.Engine, db_url: str) -> None:
    path = Path(str(schema_engine.url.database))
    _package_with_release(schema_engine)
    writer = sqlite3.connect(path)
    try:
        writer.execute("BEGIN EXCLUSIVE")  # readers wait, then give up: "database is locked"
        result = vestige(db_url, "history", "Package", "1")
    finally:
        writer.close()
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: database error at {db_url}: database is locked; "
        + SQLITE_LOCKED_HINT.format(path=path)
        + "\n"
    )


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_read_only_sqlite_database_gets_a_sqlite_hint(schema_engine: sa.Engine) -> None:
    path = Path(str(schema_engine.url.database))
    package_id, _, written = _package_with_release(schema_engine)
    before = _rows(schema_engine)
    read_only = f"sqlite:///file:{path}?mode=ro&uri=true"
    result = vestige(read_only, "restore", "Package", str(package_id), "--to", str(written), "-y")
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: database error at {render_url(read_only)}: attempt to write a readonly database; "
        + SQLITE_READ_ONLY_HINT.format(path=path)
        + "\n"
    )
    assert _rows(schema_engine) == before
    assert not Path(f"{path}{LOCK_SUFFIX}").exists()
