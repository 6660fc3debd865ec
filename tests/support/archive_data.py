"""A history worth archiving, and the readings the archive tests compare.

Three packages edited over two years by two maintainers (recorded in the change context,
with a reason and a request id), a
release edited too, maintainers added and removed (a many-to-many version table), and a
package deleted long ago (its whole chain goes, and transactions become orphans).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

import models
from tests.support.retention_data import ago, commit_at
from vestige import context
from vestige.history import history
from vestige.registry import versioned_models
from vestige.retention.policy import Policy, parse_policy
from vestige.versioning import actor

POLICY: Policy = parse_policy({"keep_days": 200, "keep_versions": 2, "deleted_keep_days": 90})
AGES = [700, 650, 520, 400, 380, 250, 30, 2]


def write_archivable_history(engine: sa.Engine) -> None:
    """Write the history described above, backdated with ``commit_at``."""
    with Session(engine) as session:
        alice = models.Maintainer(username="alice", email="alice@example.org")
        bob = models.Maintainer(username="bob", email="bob@example.org")
        session.add_all([alice, bob])
        commit_at(session, ago(800))
        users = [(alice.id, "192.0.2.10"), (bob.id, "198.51.100.7")]
        packages = []
        for name in ("a", "b", "c", "gone"):
            with actor(user_id=alice.id, remote_addr="192.0.2.10"):
                package = models.Package(name=name, summary="v0")
                package.maintainers.append(alice)
                session.add(package)
                commit_at(session, ago(AGES[0]))
            packages.append(package)
        release = models.Release(package=packages[0], version="1.0.0")
        session.add(release)
        commit_at(session, ago(AGES[0]))
        for step, age in enumerate(AGES[1:], start=1):
            user_id, address = users[step % 2]
            # a change context beyond the actor: it must come back from the archive too
            with context(
                user=user_id, remote_addr=address, reason=f"step {step}", request_id=f"r-{age}"
            ):
                for package in packages[:3]:
                    package.summary = f"v{step}"
                release.yanked = step % 2 == 1
                if step == 2:
                    packages[1].maintainers.append(bob)
                if step == 4:
                    packages[1].maintainers.remove(alice)
                if step == 1:
                    session.delete(packages[3])
                commit_at(session, ago(age))


def records(engine: sa.Engine) -> Iterator[tuple[type[Any], tuple[Any, ...]]]:
    """Every (model, key) with versions in the database now."""
    with engine.connect() as conn:
        for model in versioned_models().values():
            table = model.version_table
            key = [c for c in table.primary_key.columns if c.name != "transaction_id"]
            for row in conn.execute(sa.select(*key).distinct().order_by(*key)):
                yield model.model, tuple(row)


def histories(
    engine: sa.Engine, keys: list[tuple[type[Any], tuple[Any, ...]]], archive: Any = None
) -> dict[str, list[dict[str, Any]]]:
    """Each record's history as ``Version.to_dict()``s, read with ``archive`` if given."""
    with Session(engine) as session:
        return {
            f"{model.__name__} {key}": [
                version.to_dict() for version in history(session, model, key, archive=archive)
            ]
            for model, key in keys
        }


def version_rows(engine: sa.Engine) -> dict[str, set[tuple[Any, ...]]]:
    """Every version table's rows, as sets of tuples (all columns)."""
    found: dict[str, set[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for table in models.Base.metadata.sorted_tables:
            if table.name.endswith("_version"):
                found[table.name] = {tuple(row) for row in conn.execute(sa.select(table))}
    return found
