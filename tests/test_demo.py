"""The demo's sample data: a package edited by two maintainers, written once; and the
two-year history the archive walk-through prunes."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

import models
from models.sample_data import write_backdated_history, write_sample_data
from tests.support.project import ROOT
from vestige.archive import verify
from vestige.config import load_settings
from vestige.history import history
from vestige.retention import load_policy, prune

TX = models.Transaction.__table__


def test_sample_data_is_history_by_two_users_and_a_second_run_writes_nothing(
    migrated_engine: sa.Engine,
) -> None:
    with Session(migrated_engine) as session:
        package_id = write_sample_data(session)
    with Session(migrated_engine) as session:
        package = session.get(models.Package, package_id)
        assert package is not None
        versions = package.versions.all()
        users = [v.transaction.user.username for v in versions]
        assert users == ["alice", "bob", "alice", "bob"]
        assert versions[-1].summary == "A small, typed HTTP client"
        licenses = dict(session.execute(sa.select(models.License.spdx_id, models.License.id)).all())
        assert versions[2].changeset == {"license_id": [licenses["MIT"], licenses["Apache-2.0"]]}
        count = session.scalar(sa.select(sa.func.count()).select_from(models.Transaction))

    with Session(migrated_engine) as session:
        assert write_sample_data(session) == package_id
        assert session.scalar(sa.select(sa.func.count()).select_from(models.Transaction)) == count


def test_the_two_year_demo_prunes_into_the_archive_and_reads_back_the_same_history(
    migrated_engine: sa.Engine, tmp_path: Path
) -> None:
    """The archive walk-through of docs/archive.md, with the project's own policy."""
    with Session(migrated_engine) as session:
        package_id = write_sample_data(session)
        edits = write_backdated_history(session, package_id, 730)
    with migrated_engine.connect() as conn:
        oldest, newest = conn.execute(
            sa.select(sa.func.min(TX.c.issued_at), sa.func.max(TX.c.issued_at))
        ).one()
    assert edits == 24 and 725 <= (newest - oldest).days <= 730
    with Session(migrated_engine) as session:
        before = [v.to_dict() for v in history(session, models.Package, package_id)]
    archive = str(tmp_path / "archive")
    policy = load_policy(load_settings(ROOT / "pyproject.toml").raw)

    report = prune(migrated_engine, policy, archive=archive)

    assert report.versions_deleted > 0 and verify(archive).ok
    with Session(migrated_engine) as session:
        assert len(history(session, models.Package, package_id)) < len(before)
        after = history(session, models.Package, package_id, archive=archive)
        assert [v.to_dict() for v in after] == before
