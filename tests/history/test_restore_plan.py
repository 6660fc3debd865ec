"""``plan_restore`` lists every row a restore writes, and ``restore`` writes exactly those.

The reference models, on SQLite and PostgreSQL: a package whose releases (one-to-many)
and maintainers (many-to-many) changed after the transaction it is restored to.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

import models
from vestige.history import Change, history
from vestige.history.restore import Action, RowChange, plan_restore, restore


@dataclass
class Ids:
    package: int
    dan: int
    eve: int
    kept: int
    deleted: int
    added: int


@pytest.fixture
def ids(schema_engine: sa.Engine) -> Ids:
    """tx 1: attrs with releases 1.0 and 2.0, kept by dan; tx 2: summary changed, 1.0
    yanked, 2.0 deleted, 3.0 added, eve added as a maintainer."""
    with Session(schema_engine) as session:
        dan = models.Maintainer(username="dan", email="dan@example.org")
        eve = models.Maintainer(username="eve", email="eve@example.org")
        kept = models.Release(version="1.0")
        deleted = models.Release(version="2.0")
        package = models.Package(
            name="attrs", summary="Classes", releases=[kept, deleted], maintainers=[dan]
        )
        session.add_all([package, eve])
        session.commit()
        package.summary = "Classes without boilerplate"
        kept.yanked = True
        package.releases.remove(deleted)
        added = models.Release(version="3.0")
        package.releases.append(added)
        package.maintainers.append(eve)
        session.commit()
        return Ids(package.id, dan.id, eve.id, kept.id, deleted.id, added.id)


def release_values(engine: sa.Engine, release_id: int, tx: int) -> dict[str, object]:
    with Session(engine) as session:
        version = session.get_one(models.ReleaseVersion, (release_id, tx))
        return {col.key: getattr(version, col.key) for col in models.Release.__table__.c}


def test_plan_lists_every_row_and_restore_writes_exactly_them(
    schema_engine: sa.Engine, ids: Ids
) -> None:
    relations = ["releases", "maintainers"]
    with Session(schema_engine) as session:
        plan = plan_restore(session, models.Package, ids.package, to=1, relations=relations)
        assert not session.new and not session.dirty and not session.deleted
    kept_now = release_values(schema_engine, ids.kept, 2)
    kept_then = release_values(schema_engine, ids.kept, 1)
    summary = Change("summary", "Classes without boilerplate", "Classes")
    link = {"package_id": ids.package, "maintainer_id": ids.eve}
    assert [(row.action, row.label) for row in plan.rows] == [
        (Action.UPDATE, f"Package {ids.package}"),
        (Action.DELETE, f"package_maintainer {ids.package},{ids.eve}"),
        (Action.UPDATE, f"Release {ids.kept}"),
        (Action.INSERT, f"Release {ids.deleted}"),
        (Action.DELETE, f"Release {ids.added}"),
    ]
    package_row, link_row, kept_row, deleted_row, added_row = plan.rows
    assert package_row.changes == (summary,)
    assert link_row == RowChange(
        Action.DELETE, "package_maintainer", None, (ids.package, ids.eve), link
    )
    assert (kept_row.old, kept_row.new) == (kept_now, kept_then)
    assert kept_row.changes == (Change("yanked", True, False),)
    assert deleted_row.new == release_values(schema_engine, ids.deleted, 1)
    assert added_row.old == release_values(schema_engine, ids.added, 2)
    assert plan.to_dict()["rows"][2]["changes"] == {"yanked": {"old": True, "new": False}}

    with Session(schema_engine) as session:
        result = restore(
            session, models.Package, ids.package, to=1, relations=relations, expected=plan
        )
        session.commit()
        package = session.get_one(models.Package, ids.package)
        assert package.summary == "Classes"
        assert [r.id for r in package.releases] == [ids.kept, ids.deleted]
        assert [m.id for m in package.maintainers] == [ids.dan]
        assert release_values(schema_engine, ids.kept, result.transaction_id or 0) == kept_then
        assert history(session, models.Package, ids.package)[-1].transaction_id == (
            result.transaction_id
        )
    with schema_engine.connect() as conn:
        for table in ("package_version", "release_version", "package_maintainer_version"):
            written = conn.scalar(
                sa.text(f"SELECT count(*) FROM {table} WHERE transaction_id = :tx"),
                {"tx": result.transaction_id},
            )
            assert written, table


def test_nothing_to_restore_writes_nothing(schema_engine: sa.Engine, ids: Ids) -> None:
    with Session(schema_engine) as session:
        plan = plan_restore(session, models.Package, ids.package, to=2, relations=["releases"])
        assert plan.rows == ()
        result = restore(session, models.Package, ids.package, to=2, relations=["releases"])
        session.commit()
        assert (result.transaction_id, result.record.id) == (None, ids.package)
        assert len(history(session, models.Package, ids.package)) == 2


def test_a_many_to_one_that_referred_to_nothing_then(schema_engine: sa.Engine, ids: Ids) -> None:
    """Continuum's own revert fails on it; the record's foreign key column is enough."""
    with Session(schema_engine) as session:
        mit = models.License(spdx_id="MIT", name="MIT License")
        session.get_one(models.Package, ids.package).license = mit
        session.commit()
        plan = plan_restore(session, models.Package, ids.package, to=2, relations=["license"])
        assert [(row.label, row.changes) for row in plan.rows] == [
            (f"Package {ids.package}", (Change("license_id", mit.id, None),))
        ]
        restore(session, models.Package, ids.package, to=2, relations=["license"], expected=plan)
        session.commit()
        assert session.get_one(models.Package, ids.package).license is None
