"""vestige.history and vestige.history.restore against real SQLite and PostgreSQL databases.

The story: three maintainers edit two packages over eight transactions, each
transaction backdated to a fixed hour so timestamps are exact.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

import models
from tests.support.backends import BACKEND_PARAMS
from tests.support.history_databases import count_statements, module_database
from vestige.errors import ConfigError, HistoryPruned, RecordNotFound, RestoreRefused
from vestige.history import Change, Operation, as_of, at, changes, diff, history
from vestige.history.restore import Action, plan_restore, restore
from vestige.versioning import actor

EPOCH = datetime(2026, 1, 1)
CREATED = datetime(2025, 12, 31, 12, 0)


def hour(tx: int) -> datetime:
    """When transaction ``tx`` was issued, after backdating."""
    return EPOCH + timedelta(hours=tx)


def backdate(session: Session) -> None:
    transaction = models.Transaction.__table__
    for (tx_id,) in session.execute(sa.select(transaction.c.id)):
        session.execute(
            transaction.update().where(transaction.c.id == tx_id).values(issued_at=hour(tx_id))
        )
    session.commit()


@dataclass
class Story:
    ann: int
    bob: int
    cy: int
    requests: int
    flask: int
    release: int


def build_story(engine: sa.Engine) -> Story:
    with Session(engine) as session:
        mit = models.License(spdx_id="MIT", name="MIT License")
        apache = models.License(spdx_id="Apache-2.0", name="Apache License 2.0")
        ann = models.Maintainer(username="ann", email="ann@example.org")
        bob = models.Maintainer(username="bob", email="bob@example.org")
        cy = models.Maintainer(username="cy", email="cy@example.org")
        session.add_all([mit, apache, ann, bob, cy])
        session.commit()  # tx 1
        with actor(ann.id, "192.0.2.1"):
            requests = models.Package(
                name="requests", summary="HTTP", license=mit, maintainers=[ann], created_at=CREATED
            )
            flask = models.Package(name="flask", summary="micro", created_at=CREATED)
            session.add_all([requests, flask])
            session.commit()  # tx 2
        with actor(bob.id):
            requests.summary = "HTTP for Humans"
            session.commit()  # tx 3
        with actor(cy.id):
            flask.summary = "Microframework"
            session.commit()  # tx 4
        with actor(ann.id):
            requests.homepage = "https://requests.dev"
            requests.license = apache
            session.commit()  # tx 5
        with actor(bob.id):
            release = models.Release(version="1.0", released_at=CREATED)
            requests.releases.append(release)
            requests.maintainers.append(bob)
            session.commit()  # tx 6
        with actor(cy.id):
            requests.summary = "HTTP library"
            session.commit()  # tx 7
        story = Story(ann.id, bob.id, cy.id, requests.id, flask.id, release.id)
        with actor(bob.id):
            session.delete(requests)
            session.commit()  # tx 8
        backdate(session)
    return story


@pytest.fixture
def story(schema_engine: sa.Engine) -> Story:
    """The story in this test's own database, for tests that write."""
    return build_story(schema_engine)


@pytest.fixture(scope="module", params=BACKEND_PARAMS)
def shared(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[sa.Engine, Story]]:
    """The story built once per backend, for tests that only read."""
    with module_database(request, tmp_path_factory) as url:
        engine = sa.create_engine(url)
        yield engine, build_story(engine)
        engine.dispose()


REQUESTS_AT = {
    2: {"summary": "HTTP", "homepage": None},
    3: {"summary": "HTTP for Humans", "homepage": None},
    4: {"summary": "HTTP for Humans", "homepage": None},
    5: {"summary": "HTTP for Humans", "homepage": "https://requests.dev"},
    6: {"summary": "HTTP for Humans", "homepage": "https://requests.dev"},
    7: {"summary": "HTTP library", "homepage": "https://requests.dev"},
}


def test_history_lists_every_version_with_who_when_and_what(
    shared: tuple[sa.Engine, Story],
) -> None:
    schema_engine, story = shared
    with Session(schema_engine) as session:
        versions = history(session, models.Package, story.requests)

    assert [v.transaction_id for v in versions] == [2, 3, 5, 7, 8]
    assert [v.user for v in versions] == ["ann", "bob", "ann", "cy", "bob"]
    assert [v.user_id for v in versions] == [story.ann, story.bob, story.ann, story.cy, story.bob]
    assert [v.issued_at for v in versions] == [hour(tx) for tx in (2, 3, 5, 7, 8)]
    assert versions[0].remote_addr == "192.0.2.1"
    assert [v.operation for v in versions] == [
        Operation.INSERT,
        Operation.UPDATE,
        Operation.UPDATE,
        Operation.UPDATE,
        Operation.DELETE,
    ]
    assert [v.end_transaction_id for v in versions] == [3, 5, 7, 8, None]
    assert versions[0].changes == (
        Change("id", None, story.requests),
        Change("name", None, "requests"),
        Change("summary", None, "HTTP"),
        Change("license_id", None, 1),
        Change("created_at", None, CREATED),
    )
    assert versions[1].changes == (Change("summary", "HTTP", "HTTP for Humans"),)
    assert versions[2].changes == (
        Change("homepage", None, "https://requests.dev"),
        Change("license_id", 1, 2),
    )
    assert versions[3].changes == (Change("summary", "HTTP for Humans", "HTTP library"),)
    assert versions[4].changes == ()
    assert not any(v.pruned_before for v in versions)


def test_history_is_one_statement_however_long(shared: tuple[sa.Engine, Story]) -> None:
    schema_engine, story = shared
    with Session(schema_engine) as session:
        with count_statements(schema_engine) as short:
            assert len(history(session, models.Package, story.flask)) == 2
        with count_statements(schema_engine) as long:
            versions = history(session, models.Package, story.requests)
            # reading what the table shows must not load anything more
            assert [(v.user, v.changes, v.issued_at) for v in versions]
    assert len(short) == len(long) == 1


def test_history_limit_keeps_the_newest_and_their_changes(shared: tuple[sa.Engine, Story]) -> None:
    schema_engine, story = shared
    with Session(schema_engine) as session:
        versions = history(session, models.Package, story.requests, limit=2)
    assert [v.transaction_id for v in versions] == [7, 8]
    assert versions[0].changes == (Change("summary", "HTTP for Humans", "HTTP library"),)
    assert not versions[0].pruned_before


def test_history_of_an_unknown_key_is_empty(shared: tuple[sa.Engine, Story]) -> None:
    schema_engine, _ = shared
    with Session(schema_engine) as session:
        assert history(session, models.Package, 999) == []
        assert as_of(session, models.Package, 999, 5) is None
        with pytest.raises(RecordNotFound, match="no history for Package 999"):
            at(session, models.Package, 999, 5)


def test_as_of_every_transaction_boundary(shared: tuple[sa.Engine, Story]) -> None:
    schema_engine, story = shared
    with Session(schema_engine) as session:
        for tx in range(1, 10):
            with count_statements(schema_engine) as statements:
                by_id = as_of(session, models.Package, story.requests, tx)
                exactly = as_of(session, models.Package, story.requests, hour(tx))
                just_before = as_of(
                    session, models.Package, story.requests, hour(tx) - timedelta(seconds=1)
                )
            found = [
                None if v is None else {k: v.values[k] for k in ("summary", "homepage")}
                for v in (by_id, exactly, just_before)
            ]
            assert found == [REQUESTS_AT.get(tx)] * 2 + [REQUESTS_AT.get(tx - 1)], tx
            # one statement each: the record's chain, read whole, answers
            assert len(statements) == 3, tx


def test_as_of_accepts_an_aware_time(shared: tuple[sa.Engine, Story]) -> None:
    schema_engine, story = shared
    from datetime import UTC, timezone

    paris = timezone(timedelta(hours=1))
    when = hour(3).replace(tzinfo=UTC).astimezone(paris)
    with Session(schema_engine) as session:
        version = as_of(session, models.Package, story.requests, when)
    assert version is not None
    assert version.transaction_id == 3


def test_diff_between_non_adjacent_versions(shared: tuple[sa.Engine, Story]) -> None:
    schema_engine, story = shared
    with Session(schema_engine) as session:
        versions = history(session, models.Package, story.requests)
        flask = history(session, models.Package, story.flask)
    assert diff(versions[0], versions[3]) == [
        Change("summary", "HTTP", "HTTP library"),
        Change("homepage", None, "https://requests.dev"),
        Change("license_id", 1, 2),
    ]
    assert diff(versions[3], versions[0]) == [
        Change("summary", "HTTP library", "HTTP"),
        Change("homepage", "https://requests.dev", None),
        Change("license_id", 2, 1),
    ]
    assert diff(versions[2], versions[2]) == []
    with pytest.raises(ConfigError, match="different records"):
        diff(versions[0], flask[0])


def test_changes_lists_transactions_and_what_they_touched(shared: tuple[sa.Engine, Story]) -> None:
    schema_engine, story = shared
    with Session(schema_engine) as session, count_statements(schema_engine) as statements:
        by_bob = changes(session, user=story.bob)
        window = changes(session, since=hour(4), until=hour(7))
        releases = changes(session, model=models.Release)
    assert [t.transaction_id for t in by_bob] == [3, 6, 8]
    assert {t.user for t in by_bob} == {"bob"}
    assert [(x.model, x.key, x.operation) for x in by_bob[1].touched] == [
        ("Release", (story.release,), Operation.INSERT),
        ("package_maintainer", (story.requests, story.bob), Operation.INSERT),
    ]
    assert [(x.model, x.key, x.operation) for x in by_bob[2].touched] == [
        ("Package", (story.requests,), Operation.DELETE),
        ("Release", (story.release,), Operation.DELETE),
        ("package_maintainer", (story.requests, story.ann), Operation.DELETE),
        ("package_maintainer", (story.requests, story.bob), Operation.DELETE),
    ]
    assert [t.transaction_id for t in window] == [4, 5, 6]
    assert [t.issued_at for t in window] == [hour(4), hour(5), hour(6)]
    assert [t.transaction_id for t in releases] == [6, 8]
    # one statement for the transactions, one per version table: 3 calls x (1 + 5)
    assert len(statements) == 3 * (1 + 5)


def test_restore_an_updated_record(schema_engine: sa.Engine, story: Story) -> None:
    with Session(schema_engine) as session:
        plan = plan_restore(session, models.Package, story.flask, to=3)
        assert plan.target.transaction_id == 2
        assert plan.changes == (Change("summary", "Microframework", "micro"),)
        assert not plan.undeletes
        assert [(row.action, row.label, row.changes) for row in plan.rows] == [
            (Action.UPDATE, "Package 2", (Change("summary", "Microframework", "micro"),))
        ]
        with actor(story.ann):
            result = restore(session, models.Package, story.flask, to=hour(3), expected=plan)
        session.commit()
        assert result.record.summary == "micro"
        newest = history(session, models.Package, story.flask)[-1]
    assert newest.transaction_id == result.transaction_id
    assert newest.operation is Operation.UPDATE
    assert newest.user == "ann"
    assert newest.changes == (Change("summary", "Microframework", "micro"),)
    assert_current_version_matches_live_rows(schema_engine)


def test_restore_a_deleted_record_with_its_relations(
    schema_engine: sa.Engine, story: Story
) -> None:
    with Session(schema_engine) as session:
        plan = plan_restore(
            session, models.Package, story.requests, to=7, relations=["releases", "maintainers"]
        )
        assert plan.undeletes
        with actor(story.cy):
            restore(
                session, models.Package, story.requests, to=7, relations=["releases", "maintainers"]
            )
        session.commit()
    with Session(schema_engine) as session:
        package = session.get_one(models.Package, story.requests)
        assert (package.summary, package.homepage, package.license.spdx_id) == (
            "HTTP library",
            "https://requests.dev",
            "Apache-2.0",
        )
        assert [r.version for r in package.releases] == ["1.0"]
        assert sorted(m.username for m in package.maintainers) == ["ann", "bob"]
        newest = history(session, models.Package, story.requests)[-1]
        assert (newest.operation, newest.user) == (Operation.INSERT, "cy")
    assert_current_version_matches_live_rows(schema_engine)


def test_restore_refuses_a_time_the_record_did_not_exist(
    shared: tuple[sa.Engine, Story],
) -> None:
    schema_engine, story = shared
    with Session(schema_engine) as session:
        with pytest.raises(RecordNotFound, match="did not exist at transaction 1"):
            restore(session, models.Package, story.requests, to=1)
        with pytest.raises(ConfigError, match="no relationship 'nope'"):
            restore(session, models.Package, story.flask, to=2, relations=["nope"])
        assert not session.new and not session.dirty and not session.deleted


def test_restore_refused_when_the_row_conflicts(schema_engine: sa.Engine, story: Story) -> None:
    with Session(schema_engine) as session:
        session.add(models.Package(name="requests", summary="a newer package of that name"))
        session.commit()
        with pytest.raises(RestoreRefused, match="cannot restore Package 1: the database refused"):
            restore(session, models.Package, story.requests, to=7)
        session.rollback()
        names = session.scalars(sa.select(models.Package.name).order_by(models.Package.id)).all()
    assert names == ["flask", "requests"]


def prune_prefix(session: Session, table: str, where: str, before_tx: int) -> int:
    """Delete the versions written before ``before_tx``, as the pruner would."""
    deleted = session.execute(
        sa.text(f"DELETE FROM {table} WHERE {where} AND transaction_id < :tx"),
        {"tx": before_tx},
    ).rowcount
    session.commit()
    return deleted


def test_restore_refused_when_the_target_version_was_pruned(
    schema_engine: sa.Engine, story: Story
) -> None:
    with Session(schema_engine) as session:
        assert prune_prefix(session, "package_version", f"id = {story.flask}", 4) == 1
        versions = history(session, models.Package, story.flask)
        assert [(v.transaction_id, v.pruned_before, v.changes) for v in versions] == [(4, True, ())]
        with pytest.raises(HistoryPruned, match="before transaction 4 has been pruned"):
            as_of(session, models.Package, story.flask, 2)
        with pytest.raises(HistoryPruned):
            restore(session, models.Package, story.flask, to=2)
        session.rollback()
        assert session.get_one(models.Package, story.flask).summary == "Microframework"


@pytest.fixture
def pruned_children(schema_engine: sa.Engine) -> tuple[int, int, int]:
    """A live package whose release and maintainer link lost their early history.

    tx 1: the package with release 1.0 and maintainer dan; tx 2: summary changed;
    tx 3: the release yanked. Then the release's insert version (tx 1) and the link's
    versions are pruned.
    """
    with Session(schema_engine) as session:
        dan = models.Maintainer(username="dan", email="dan@example.org")
        release = models.Release(version="1.0")
        package = models.Package(
            name="attrs", summary="Classes", releases=[release], maintainers=[dan]
        )
        session.add(package)
        session.commit()
        package.summary = "Classes without boilerplate"
        session.commit()
        release.yanked = True
        session.commit()
        ids = (package.id, release.id, dan.id)
        prune_prefix(session, "release_version", f"id = {release.id}", 3)
    return ids


def test_restore_refused_when_relation_history_was_pruned(
    schema_engine: sa.Engine, pruned_children: tuple[int, int, int]
) -> None:
    package_id, release_id, dan_id = pruned_children
    with Session(schema_engine) as session:
        # why restore checks: Continuum's own revert deletes the live release
        first = history(session, models.Package, package_id)[0]
        record = session.get_one(models.PackageVersion, (package_id, first.transaction_id))
        record.revert(relations=["releases"])
        session.flush()
        assert session.get(models.Release, release_id) is None
        session.rollback()

        with pytest.raises(HistoryPruned, match=rf"'releases'.*Release {release_id} up to"):
            restore(session, models.Package, package_id, to=1, relations=["releases"])
        session.rollback()
        prune_prefix(session, "package_maintainer_version", f"package_id = {package_id}", 2)
        with pytest.raises(HistoryPruned, match=r"'maintainers'.*package_maintainer row"):
            restore(session, models.Package, package_id, to=2, relations=["maintainers"])
        session.rollback()
    with Session(schema_engine) as session:
        package = session.get_one(models.Package, package_id)
        assert package.summary == "Classes without boilerplate"
        assert [r.id for r in package.releases] == [release_id]
        assert [m.id for m in package.maintainers] == [dan_id]
        # the record's own columns still can be restored: their history is whole
        restore(session, models.Package, package_id, to=1)
        session.commit()
        assert session.get_one(models.Package, package_id).summary == "Classes"
        assert [r.id for r in session.get_one(models.Package, package_id).releases] == [release_id]
    assert_current_version_matches_live_rows(schema_engine)


def test_restore_with_relations_created_after_the_target_is_allowed(
    schema_engine: sa.Engine,
) -> None:
    """A release inserted after the target has whole history: Continuum removes it."""
    with Session(schema_engine) as session:
        package = models.Package(name="click", summary="CLI")
        session.add(package)
        session.commit()  # tx 1
        package.releases.append(models.Release(version="8.0"))
        package.summary = "Composable CLI"
        session.commit()  # tx 2
        restore(session, models.Package, package.id, to=1, relations=["releases"])
        session.commit()
        assert (package.summary, package.releases) == ("CLI", [])
    assert_current_version_matches_live_rows(schema_engine)


def assert_current_version_matches_live_rows(engine: sa.Engine) -> None:
    """Invariant H1 for packages and releases."""
    with Session(engine) as session:
        for model in (models.Package, models.Release):
            version_cls = (
                models.PackageVersion if model is models.Package else models.ReleaseVersion
            )
            live = {row.id: row for row in session.scalars(sa.select(model))}
            current = session.scalars(
                sa.select(version_cls).where(
                    version_cls.end_transaction_id.is_(None), version_cls.operation_type != 2
                )
            ).all()
            assert sorted(v.id for v in current) == sorted(live)
            for version in current:
                row = live[version.id]
                for column in model.__table__.columns:
                    assert getattr(version, column.key) == getattr(row, column.key), column.key
