"""The demo's sample data: a package edited by two maintainers, written once."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

import models
from models.sample_data import write_sample_data


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
