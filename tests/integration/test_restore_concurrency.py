"""A restore under concurrent changes: locked, whole, or refused; never a mix.

Two real connections on each backend: the restore's session and another writer.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

import models
from vestige.restore import plan_restore, restore

COLUMNS = ("name", "summary", "homepage", "license_id", "created_at")


@pytest.fixture
def package(schema_engine: sa.Engine) -> int:
    """tx 1: the package; tx 2: summary and homepage changed."""
    with Session(schema_engine) as session:
        package = models.Package(name="httpx", summary="HTTP", homepage=None)
        session.add(package)
        session.commit()
        package.summary = "A next-generation HTTP client"
        session.commit()
        return package.id


def row(engine: sa.Engine, package_id: int) -> dict[str, object]:
    with Session(engine) as session:
        found = session.get_one(models.Package, package_id)
        return {name: getattr(found, name) for name in COLUMNS}


def target(engine: sa.Engine, package_id: int, tx: int) -> dict[str, object]:
    with Session(engine) as session:
        version = session.get_one(models.PackageVersion, (package_id, tx))
        return {name: getattr(version, name) for name in COLUMNS}


def other_writer_edits(engine: sa.Engine, package_id: int) -> None:
    """Another connection changes two columns and commits."""
    with Session(engine) as other:
        found = other.get_one(models.Package, package_id)
        found.summary = "HTTP"  # the target's value: the stale restore skipped it
        found.homepage = "https://www.python-httpx.org"
        other.commit()


def test_restore_after_a_concurrent_commit_writes_the_whole_target(
    schema_engine: sa.Engine, package: int
) -> None:
    """The restore's session loaded the record before another writer changed it."""
    with Session(schema_engine) as session:
        loaded = session.get_one(models.Package, package)
        plan_restore(session, models.Package, package, to=1)
        other_writer_edits(schema_engine, package)
        restore(session, models.Package, package, to=1)
        session.commit()
        assert loaded.homepage is None
    assert row(schema_engine, package) == target(schema_engine, package, 1)
