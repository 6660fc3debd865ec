"""The pruning engine on SQLite and PostgreSQL: each rule, overrides, deletes, m2m, orphans."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

import models
from tests.support.retention_data import (
    ASSOCIATION_VERSION_TABLE,
    CHANGES,
    DELETE,
    INSERT,
    NOW,
    TX,
    UPDATE,
    chains,
    commit_at,
    days_ago,
    history_engine,
    history_problems,
    history_url,
    postgres_history_url,
    restore,
    snapshot,
    sqlite_history_template,
    transaction_ids,
    unreferenced_transactions,
)
from vestige.errors import ConfigError, PrunerBusy
from vestige.retention import TRANSACTION_PHASE, Progress, PruneReport, prune
from vestige.retention.lock import pruner_lock
from vestige.retention.policy import Policy, Rules, parse_policy

# fixtures, imported to be found
__all__ = ["history_engine", "history_url", "postgres_history_url", "sqlite_history_template"]

PACKAGE_VERSION = models.PackageVersion.__table__
RELEASE_VERSION = models.ReleaseVersion.__table__


def package_history(engine: sa.Engine, name: str, ages: list[float]) -> tuple[int, list[int]]:
    """A package written len(ages) times, the i-th write ``ages[i]`` days before NOW."""
    with Session(engine) as session:
        package = models.Package(name=name, summary="v0")
        session.add(package)
        tx_ids = [commit_at(session, days_ago(ages[0]))]
        for i, age in enumerate(ages[1:], start=1):
            package.summary = f"v{i}"
            tx_ids.append(commit_at(session, days_ago(age)))
        return package.id, tx_ids


def remaining(engine: sa.Engine, table: sa.Table, record_id: int) -> list[int]:
    return [tx for tx, _, _ in chains(engine, table).get((record_id,), [])]


def run(engine: sa.Engine, policy: dict[str, Any], **kwargs: Any) -> PruneReport:
    """Prune as of NOW, then check that the history still holds H1-H3."""
    report = prune(engine, parse_policy(policy), now=NOW, pause=0, **kwargs)
    assert history_problems(engine) == []
    return report


def test_keep_days_counts_from_the_superseding_transaction(history_engine: sa.Engine) -> None:
    # written 400, 300, 100 and 10 days ago: v0 was superseded 300 days ago, v1 100 days ago
    pid, txs = package_history(history_engine, "attrs", [400, 300, 100, 10])
    report = run(history_engine, {"keep_days": 200})
    assert remaining(history_engine, PACKAGE_VERSION, pid) == txs[1:]
    table = {t.table: t for t in report.tables}["package_version"]
    assert (table.examined, table.deleted, table.kept) == (4, 1, 3)
    assert table.oldest_kept_issued_at == days_ago(300)
    assert report.transactions_deleted == 1
    assert txs[0] not in transaction_ids(history_engine)


def test_keep_versions_alone_keeps_the_newest_n(history_engine: sa.Engine) -> None:
    pid, txs = package_history(history_engine, "attrs", [5, 4, 3, 2, 1])
    other, other_txs = package_history(history_engine, "idna", [5])
    run(history_engine, {"keep_versions": 2})
    assert remaining(history_engine, PACKAGE_VERSION, pid) == txs[-2:]
    assert remaining(history_engine, PACKAGE_VERSION, other) == other_txs


def test_rules_combine_a_version_goes_only_when_every_rule_allows(
    history_engine: sa.Engine,
) -> None:
    pid, txs = package_history(history_engine, "attrs", [900, 800, 700, 600, 50, 40])
    # keep_days alone would leave the last three, keep_versions alone the last four:
    # together, the last four stay
    run(history_engine, {"keep_days": 365, "keep_versions": 4})
    assert remaining(history_engine, PACKAGE_VERSION, pid) == txs[2:]


def test_current_version_of_a_live_row_is_never_pruned(history_engine: sa.Engine) -> None:
    pid, txs = package_history(history_engine, "attrs", [1000])
    run(history_engine, {"keep_days": 0, "keep_versions": 0})
    assert remaining(history_engine, PACKAGE_VERSION, pid) == txs


def test_only_a_prefix_goes_even_when_times_are_out_of_order(history_engine: sa.Engine) -> None:
    # v2's superseding transaction is dated before v1's: v1 must still stay, or v2
    # (old enough on its own) would leave a hole between v0 and v3
    pid, txs = package_history(history_engine, "attrs", [500, 400, 10, 300, 5])
    run(history_engine, {"keep_days": 200})
    assert remaining(history_engine, PACKAGE_VERSION, pid) == txs[1:]


def test_per_model_rules_override_the_default(history_engine: sa.Engine) -> None:
    with Session(history_engine) as session:
        package = models.Package(name="attrs")
        release = models.Release(package=package, version="1.0")
        session.add(release)
        first = commit_at(session, days_ago(100))
        release.yanked = True
        package.summary = "Classes"
        second = commit_at(session, days_ago(60))
        ids = package.id, release.id
    policy = {"keep_days": 365, "models": {"Release": {"keep_days": 30}}}
    run(history_engine, policy)
    assert remaining(history_engine, PACKAGE_VERSION, ids[0]) == [first, second]
    assert remaining(history_engine, RELEASE_VERSION, ids[1]) == [second]


def delete_package(engine: sa.Engine, package_id: int, age: float) -> int:
    with Session(engine) as session:
        session.delete(session.get(models.Package, package_id))
        return commit_at(session, days_ago(age))


def test_deleted_record_history_goes_whole_once_the_delete_is_old(
    history_engine: sa.Engine,
) -> None:
    old, _ = package_history(history_engine, "gone", [400, 300])
    recent, recent_txs = package_history(history_engine, "recent", [400, 300])
    delete_package(history_engine, old, 100)  # after both inserts: SQLite reuses free ids
    recent_delete = delete_package(history_engine, recent, 10)
    run(history_engine, {"keep_versions": 5, "deleted_keep_days": 90})
    assert remaining(history_engine, PACKAGE_VERSION, old) == []
    # deleted 10 days ago: kept under the ordinary rules, tombstone included
    assert remaining(history_engine, PACKAGE_VERSION, recent) == [*recent_txs, recent_delete]
    assert unreferenced_transactions(history_engine) == set()


def test_a_record_inserted_again_after_its_delete_is_live(history_engine: sa.Engine) -> None:
    pid, txs = package_history(history_engine, "phoenix", [400])
    tombstone = delete_package(history_engine, pid, 300)
    with Session(history_engine) as session:
        session.add(models.Package(id=pid, name="phoenix", summary="again"))
        again = commit_at(session, days_ago(200))
    assert [op for _, _, op in chains(history_engine, PACKAGE_VERSION)[(pid,)]] == [
        INSERT,
        DELETE,
        INSERT,
    ]
    run(history_engine, {"deleted_keep_days": 1})
    assert remaining(history_engine, PACKAGE_VERSION, pid) == [*txs, tombstone, again]
    run(history_engine, {"keep_days": 250, "deleted_keep_days": 1})
    assert remaining(history_engine, PACKAGE_VERSION, pid) == [tombstone, again]


def association_chains(engine: sa.Engine) -> dict[tuple[object, ...], list[tuple[int, int]]]:
    return {
        key: [(tx, op) for tx, _, op in rows]
        for key, rows in chains(engine, ASSOCIATION_VERSION_TABLE).items()
    }


def test_many_to_many_liveness_comes_from_the_newest_row(history_engine: sa.Engine) -> None:
    with Session(history_engine) as session:
        ann = models.Maintainer(username="ann", email="ann@example.org")
        bob = models.Maintainer(username="bob", email="bob@example.org")
        package = models.Package(name="flask", maintainers=[ann, bob])
        session.add(package)
        added = commit_at(session, days_ago(500))
        package.maintainers.remove(bob)
        removed = commit_at(session, days_ago(400))
        package.maintainers.remove(ann)
        package.maintainers.append(bob)
        moved = commit_at(session, days_ago(300))
        pid, ann_id, bob_id = package.id, ann.id, bob.id
    assert association_chains(history_engine) == {
        (pid, ann_id): [(added, INSERT), (moved, DELETE)],
        (pid, bob_id): [(added, INSERT), (removed, DELETE), (moved, INSERT)],
    }
    run(history_engine, {"keep_days": 350})
    # bob's link is live again (its newest row is an insert) and keeps it; the rows
    # superseded more than 350 days ago go; ann's removal is the newest row: it stays
    assert association_chains(history_engine) == {
        (pid, ann_id): [(added, INSERT), (moved, DELETE)],
        (pid, bob_id): [(removed, DELETE), (moved, INSERT)],
    }
    run(history_engine, {"keep_days": 350, "deleted_keep_days": 200})
    assert association_chains(history_engine) == {
        (pid, bob_id): [(removed, DELETE), (moved, INSERT)]
    }
    with Session(history_engine) as session:
        package = session.get(models.Package, pid)
        assert package is not None
        assert [m.username for m in package.maintainers] == ["bob"]


def test_orphan_transactions_go_with_their_plugin_rows(history_engine: sa.Engine) -> None:
    _, txs = package_history(history_engine, "attrs", [400, 300, 100])
    with history_engine.begin() as conn:
        empty = conn.execute(
            sa.insert(TX).values(issued_at=days_ago(1)).returning(TX.c.id)
        ).scalar_one()
    with history_engine.connect() as conn:
        changed = set(conn.execute(sa.select(CHANGES.c.transaction_id)).scalars())
    assert {txs[0], txs[1]} <= changed
    report = run(history_engine, {"keep_days": 30})
    assert report.transactions_deleted == 3  # v0's and v1's writers, and the empty one
    assert transaction_ids(history_engine) == {txs[2]}
    with history_engine.connect() as conn:
        assert set(conn.execute(sa.select(CHANGES.c.transaction_id)).scalars()) == {txs[2]}
    assert empty not in transaction_ids(history_engine)


@pytest.fixture
def audit_note(history_engine: sa.Engine) -> Iterator[sa.Table]:
    """A table of the application's own that refers to transactions."""
    activity = sa.Table(
        "audit_note",
        models.Base.metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("transaction_id", sa.BigInteger),
    )
    activity.create(history_engine)
    yield activity
    activity.drop(history_engine)
    models.Base.metadata.remove(activity)


def test_a_transaction_another_table_refers_to_stays(
    history_engine: sa.Engine, audit_note: sa.Table
) -> None:
    pid, txs = package_history(history_engine, "attrs", [400, 300, 100])
    with history_engine.begin() as conn:
        conn.execute(sa.insert(audit_note).values(id=1, transaction_id=txs[0]))
    run(history_engine, {"keep_days": 30})
    assert remaining(history_engine, PACKAGE_VERSION, pid) == [txs[2]]
    assert transaction_ids(history_engine) == {txs[0], txs[2]}


@pytest.mark.parametrize("archived", [False, True], ids=["plain", "archive"])
def test_a_transaction_referred_to_after_planning_stays(
    history_engine: sa.Engine, audit_note: sa.Table, tmp_path: Path, archived: bool
) -> None:
    """Orphan transactions are planned once; each batch checks them again and leaves
    one that something refers to by then."""
    pid, txs = package_history(history_engine, "attrs", [400, 300, 100])

    def refer_to_the_oldest(progress: Progress) -> None:
        if progress.phase == TRANSACTION_PHASE and progress.done == 0:
            with history_engine.begin() as conn:
                conn.execute(sa.insert(audit_note).values(id=1, transaction_id=txs[0]))

    archive = str(tmp_path / "archive") if archived else None
    report = run(
        history_engine, {"keep_days": 30}, on_progress=refer_to_the_oldest, archive=archive
    )
    assert remaining(history_engine, PACKAGE_VERSION, pid) == [txs[2]]
    assert transaction_ids(history_engine) == {txs[0], txs[2]}
    assert report.transactions_deleted == 1
    if archive is not None:
        from vestige.archive import ArchiveReader

        with ArchiveReader(archive) as reader:
            archived_ids = {row["id"] for row in reader.rows(TX, {})}
        assert archived_ids == {txs[1]}


def test_dry_run_changes_nothing_and_predicts_the_real_run(history_engine: sa.Engine) -> None:
    for name in ("a", "b", "c"):
        package_history(history_engine, name, [700, 500, 300, 100, 1])
    before = snapshot(history_engine)
    policy = {"keep_days": 200, "keep_versions": 2}
    dry = run(history_engine, policy, dry_run=True)
    assert snapshot(history_engine) == before
    real = run(history_engine, policy)
    assert dry.dry_run and not real.dry_run
    assert dry.tables == real.tables
    assert dry.transactions_deleted == real.transactions_deleted == 6
    assert real.versions_deleted == 6


def test_rerun_deletes_nothing(history_engine: sa.Engine) -> None:
    package_history(history_engine, "a", [700, 500, 300, 100, 1])
    policy = {"keep_days": 200}
    assert run(history_engine, policy).versions_deleted == 2
    before = snapshot(history_engine)
    again = run(history_engine, policy)
    assert (again.versions_deleted, again.transactions_deleted) == (0, 0)
    assert snapshot(history_engine) == before


class Interrupt(Exception):
    pass


def test_interrupted_run_then_rerun_ends_like_one_run(history_engine: sa.Engine) -> None:
    for i in range(6):
        package_history(history_engine, f"p{i}", [700, 600, 500, 400, 300, 2])
    original = snapshot(history_engine)
    policy = {"keep_days": 100}
    run(history_engine, policy, batch_size=4)
    uninterrupted = snapshot(history_engine)
    restore(history_engine, original)

    batches: list[Progress] = []

    def stop_after_three(progress: Progress) -> None:
        if progress.done:
            batches.append(progress)
        if len(batches) == 3:
            raise Interrupt

    with pytest.raises(Interrupt):
        prune(
            history_engine,
            parse_policy(policy),
            now=NOW,
            pause=0,
            batch_size=4,
            on_progress=stop_after_three,
        )
    assert history_problems(history_engine) == []
    # three committed batches of four rows: the rest waits for the rerun
    assert len(remaining(history_engine, PACKAGE_VERSION, 1)) < 6
    assert snapshot(history_engine) not in (original, uninterrupted)
    run(history_engine, policy, batch_size=4)
    assert snapshot(history_engine) == uninterrupted


def test_progress_is_reported_per_batch(history_engine: sa.Engine) -> None:
    package_history(history_engine, "a", [700, 600, 500, 400, 300, 2])
    seen: list[Progress] = []
    run(history_engine, {"keep_days": 100}, batch_size=2, on_progress=seen.append)
    package = [p for p in seen if p.phase == "package_version"]
    assert [(p.done, p.total) for p in package] == [(0, 4), (2, 4), (4, 4)]
    assert [(p.done, p.total) for p in seen if p.phase == TRANSACTION_PHASE][-1] == (4, 4)


def test_a_second_pruner_is_refused(history_engine: sa.Engine) -> None:
    package_history(history_engine, "a", [700, 600, 2])
    with pruner_lock(history_engine), pytest.raises(PrunerBusy, match="another pruner"):
        prune(history_engine, Policy(Rules(keep_days=1)), now=NOW)
    assert run(history_engine, {"keep_days": 1}).versions_deleted == 2


def test_unknown_model_in_policy_touches_nothing(history_engine: sa.Engine) -> None:
    package_history(history_engine, "a", [700, 600, 2])
    before = snapshot(history_engine)
    with pytest.raises(ConfigError, match=r"unknown model.*Nope"):
        prune(history_engine, parse_policy({"keep_days": 1, "models": {"Nope": {}}}), now=NOW)
    assert snapshot(history_engine) == before


def test_works_on_the_migrated_schema(migrated_engine: sa.Engine) -> None:
    pid, txs = package_history(migrated_engine, "attrs", [400, 300, 100, 10])
    run(migrated_engine, {"keep_days": 200, "keep_versions": 1})
    assert remaining(migrated_engine, PACKAGE_VERSION, pid) == txs[1:]


def test_versions_api_still_reads_the_kept_history(history_engine: sa.Engine) -> None:
    pid, txs = package_history(history_engine, "attrs", [400, 300, 100, 10])
    run(history_engine, {"keep_days": 200})
    with Session(history_engine) as session:
        package = session.get(models.Package, pid)
        assert package is not None
        versions = package.versions.all()
        assert [v.transaction_id for v in versions] == txs[1:]
        assert [v.operation_type for v in versions] == [UPDATE, UPDATE, UPDATE]
        # the oldest kept version has no previous one: its changeset shows its values
        assert versions[0].changeset["summary"] == [None, "v1"]
        assert versions[1].changeset == {"summary": ["v1", "v2"]}
        assert isinstance(versions[0].transaction.issued_at, datetime)


def test_the_invariant_checks_see_a_hole_and_a_dangling_transaction(
    history_engine: sa.Engine,
) -> None:
    pid, txs = package_history(history_engine, "attrs", [400, 300, 100])
    assert history_problems(history_engine) == []
    with history_engine.begin() as conn:
        conn.execute(
            sa.delete(PACKAGE_VERSION).where(
                PACKAGE_VERSION.c.id == pid, PACKAGE_VERSION.c.transaction_id == txs[1]
            )
        )
        conn.execute(sa.delete(TX).where(TX.c.id == txs[0]))
    problems = history_problems(history_engine)
    assert any(p.startswith(f"H2 package ({pid},): versions") for p in problems)
    assert any(p.startswith("H3 package_version: 1 versions") for p in problems)


def test_a_row_that_moved_after_planning_is_still_deleted(history_engine: sa.Engine) -> None:
    # PostgreSQL batches find rows by physical address (ctid); an UPDATE after the
    # plan moves the row, and the batch must still delete it (by key), leaving no hole
    pid, txs = package_history(history_engine, "attrs", [400, 300, 200, 100, 1])
    oldest = (PACKAGE_VERSION.c.id == pid) & (PACKAGE_VERSION.c.transaction_id == txs[0])

    def move_the_oldest_version(progress: Progress) -> None:
        if progress.phase == "package_version" and progress.done == 0:
            with history_engine.begin() as conn:
                conn.execute(sa.update(PACKAGE_VERSION).where(oldest).values(summary="moved"))

    report = run(history_engine, {"keep_days": 50}, on_progress=move_the_oldest_version)
    assert remaining(history_engine, PACKAGE_VERSION, pid) == txs[3:]
    assert report.versions_deleted == 3


def test_an_aware_now_is_read_as_utc(history_engine: sa.Engine) -> None:
    # v0 was superseded an hour short of 200 days ago: it stays, whatever zone `now` is in
    pid, txs = package_history(history_engine, "attrs", [400, 200 - 1 / 24, 10])
    paris = timezone(timedelta(hours=2))
    aware = NOW.replace(tzinfo=UTC).astimezone(paris)
    report = prune(history_engine, parse_policy({"keep_days": 200}), now=aware, pause=0)
    assert report.versions_deleted == 0
    assert remaining(history_engine, PACKAGE_VERSION, pid) == txs
