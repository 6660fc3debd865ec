"""Continuum's own history API works on a schema built by the project's migrations."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

import models
from vestige.versioning import actor, set_actor

INSERT, UPDATE, DELETE = 0, 1, 2


def test_insert_update_delete_write_versions(migrated_engine: sa.Engine) -> None:
    with Session(migrated_engine) as session:
        ann = models.Maintainer(username="ann", email="ann@example.org")
        session.add(ann)
        session.commit()
        with actor(user_id=ann.id, remote_addr="192.0.2.1"):
            package = models.Package(name="requests", summary="HTTP", maintainers=[ann])
            session.add(package)
            session.commit()
            package.summary = "HTTP for Humans"
            session.commit()
        package_id = package.id
        session.delete(package)
        session.commit()

        versions = (
            session.execute(
                sa.select(models.PackageVersion)
                .where(models.PackageVersion.id == package_id)
                .order_by(models.PackageVersion.transaction_id)
            )
            .scalars()
            .all()
        )
        assert [v.operation_type for v in versions] == [INSERT, UPDATE, DELETE]
        assert [v.summary for v in versions] == ["HTTP", "HTTP for Humans", "HTTP for Humans"]
        # validity chain: each version ends where the next begins, the last is open
        assert [v.end_transaction_id for v in versions] == [
            versions[1].transaction_id,
            versions[2].transaction_id,
            None,
        ]
        assert versions[0].transaction.user_id == ann.id
        assert versions[0].transaction.remote_addr == "192.0.2.1"
        assert versions[2].transaction.user_id is None


def test_versions_changeset_and_revert(migrated_engine: sa.Engine) -> None:
    with Session(migrated_engine) as session:
        bob = models.Maintainer(username="bob", email="bob@example.org")
        session.add(bob)
        session.commit()
        set_actor(session, user_id=bob.id)
        package = models.Package(name="attrs", summary="Classes")
        session.add(package)
        session.commit()
        package.summary = "Classes without boilerplate"
        package.homepage = "https://www.attrs.org"
        session.commit()

        assert package.versions.count() == 2
        assert package.versions[1].changeset == {
            "summary": ["Classes", "Classes without boilerplate"],
            "homepage": [None, "https://www.attrs.org"],
        }
        package.versions[0].revert()
        session.commit()
        session.refresh(package)
        assert (package.summary, package.homepage) == ("Classes", None)
        assert package.versions.count() == 3
        assert package.versions[2].transaction.user_id == bob.id


def test_many_to_many_changes_are_versioned(migrated_engine: sa.Engine) -> None:
    with Session(migrated_engine) as session:
        ann = models.Maintainer(username="ann", email="ann@example.org")
        package = models.Package(name="flask", maintainers=[ann])
        session.add(package)
        session.commit()
        package.maintainers.remove(ann)
        session.commit()

        table = sa.Table("package_maintainer_version", sa.MetaData(), autoload_with=session.bind)
        rows = session.execute(
            sa.select(table.c.operation_type).order_by(table.c.transaction_id)
        ).all()
        assert [row.operation_type for row in rows] == [INSERT, DELETE]


def test_session_actor_wins_over_context_actor_and_threads_do_not_leak(
    schema_engine: sa.Engine,
) -> None:
    import threading

    with Session(schema_engine) as session:
        ann = models.Maintainer(username="ann", email="ann@example.org")
        bob = models.Maintainer(username="bob", email="bob@example.org")
        session.add_all([ann, bob])
        session.commit()
        ann_id, bob_id = ann.id, bob.id

    seen: dict[str, int | None] = {}

    def write(name: str, user_id: int | None) -> None:
        with Session(schema_engine) as session:
            if user_id is not None:
                set_actor(session, user_id=user_id)
            package = models.Package(name=name)
            session.add(package)
            session.commit()
            seen[name] = package.versions[0].transaction.user_id

    with actor(user_id=ann_id):
        write("in-context", None)
        write("session-wins", bob_id)
        thread = threading.Thread(target=write, args=("other-thread", None))
        thread.start()
        thread.join()
    assert seen == {"in-context": ann_id, "session-wins": bob_id, "other-thread": None}
