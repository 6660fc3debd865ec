"""Pruning when transaction ids disagree with commit order (R1, R2 in commit order).

Continuum numbers a transaction at its first flush, so a writer that flushed early and
commits late leaves versions whose end transaction has a smaller id than their own. The
histories here are written one transaction after the other with the ids the two writers
would have taken (:func:`retention_support.take_id`), on SQLite and PostgreSQL; the last
test makes them with real concurrent sessions on PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from retention_support import (
    DELETE,
    INSERT,
    NOW,
    TX,
    UPDATE,
    chains,
    days_ago,
    history_engine,
    history_problems,
    history_url,
    postgres_history_url,
    sqlite_history_template,
    take_id,
)
from sqlalchemy.orm import Session

import models
from vestige.history import history
from vestige.retention import Progress, prune, version_tables
from vestige.retention.policy import parse_policy
from vestige.retention.prunable import prunable_keys

__all__ = ["history_engine", "history_url", "postgres_history_url", "sqlite_history_template"]

PACKAGE_VERSION = models.PackageVersion.__table__


def backdate(engine: sa.Engine, days: float) -> None:
    with engine.begin() as conn:
        conn.execute(sa.update(TX).values(issued_at=days_ago(days)))


def recreated_while_deleted(engine: sa.Engine) -> None:
    """The issue's history: B flushes first (id 2), A deletes package 100 and commits
    (id 3), then B inserts package 100 again and commits."""
    with Session(engine) as session:
        take_id(session, 1)
        session.add_all([models.Package(id=100, name="victim"), models.Package(id=101, name="o")])
        session.commit()
        take_id(session, 3)  # A
        session.delete(session.get(models.Package, 100))
        session.commit()
        take_id(session, 2)  # B, numbered at its first flush, before A
        session.get(models.Package, 101).summary = "o2"  # type: ignore[union-attr]
        session.add(models.Package(id=100, name="victim", summary="recreated"))
        session.commit()


def overtaken_chain(engine: sa.Engine, first: int = 1) -> None:
    """Package 1 in commit order a(tx 1) -> X(tx 3) -> Y(tx 2) -> Z(tx 4), ids from ``first``."""
    with Session(engine) as session:
        package = models.Package(id=1, name="p", summary="a")
        for offset, summary in [(0, "a"), (2, "X"), (1, "Y"), (3, "Z")]:
            take_id(session, first + offset)
            if offset == 0:
                session.add(package)
            package.summary = summary
            session.commit()


def test_the_histories_really_disagree_with_commit_order(history_engine: sa.Engine) -> None:
    recreated_while_deleted(history_engine)
    overtaken_chain(history_engine, first=11)
    found = chains(history_engine, PACKAGE_VERSION)
    assert found[(100,)] == [(1, 3, INSERT), (3, 2, DELETE), (2, None, INSERT)]
    assert found[(1,)] == [(11, 13, INSERT), (13, 12, UPDATE), (12, 14, UPDATE), (14, None, UPDATE)]
    assert history_problems(history_engine) == []


@pytest.mark.parametrize(
    "policy",
    [
        {"deleted_keep_days": 0},
        {"keep_days": 0, "keep_versions": 1, "deleted_keep_days": 0},
        {"keep_days": 30, "keep_versions": 5, "deleted_keep_days": 90},
    ],
)
def test_a_record_inserted_again_keeps_its_current_version(
    history_engine: sa.Engine, policy: dict[str, Any]
) -> None:
    recreated_while_deleted(history_engine)
    backdate(history_engine, 1000)
    prune(history_engine, parse_policy(policy), now=NOW, pause=0)
    assert history_problems(history_engine) == []
    kept = chains(history_engine, PACKAGE_VERSION)[(100,)]
    assert kept[-1] == (2, None, INSERT)  # R1: the live record's current version
    with Session(history_engine) as session:
        versions = history(session, models.Package, 100)
        assert versions[-1].values["summary"] == "recreated"


@pytest.mark.parametrize(
    ("policy", "kept"),
    [
        ({"keep_days": 0, "keep_versions": 2}, [(2, 4, UPDATE), (4, None, UPDATE)]),
        ({"keep_days": 0, "keep_versions": 3}, [(3, 2, UPDATE), (2, 4, UPDATE), (4, None, UPDATE)]),
        ({"keep_days": 0, "keep_versions": 1}, [(4, None, UPDATE)]),
    ],
)
def test_keep_versions_keeps_the_newest_in_commit_order(
    history_engine: sa.Engine, policy: dict[str, Any], kept: list[tuple[Any, ...]]
) -> None:
    overtaken_chain(history_engine)
    backdate(history_engine, 1000)
    dry = prune(history_engine, parse_policy(policy), now=NOW, pause=0, dry_run=True)
    report = prune(history_engine, parse_policy(policy), now=NOW, pause=0)
    assert chains(history_engine, PACKAGE_VERSION)[(1,)] == kept
    assert history_problems(history_engine) == []
    assert dry.tables == report.tables


def test_prunable_rows_come_oldest_first_in_commit_order(history_engine: sa.Engine) -> None:
    overtaken_chain(history_engine)
    backdate(history_engine, 1000)
    (target,) = [
        t
        for t in version_tables(parse_policy({"keep_days": 0, "keep_versions": 1}))
        if t.table is PACKAGE_VERSION
    ]
    with history_engine.connect() as conn:
        rows = conn.execute(prunable_keys(target, TX, NOW)).all()
    assert [row.transaction_id for row in rows] == [1, 3, 2]


class Interrupt(Exception):
    pass


def test_an_interrupted_run_leaves_no_hole_and_a_rerun_finishes(
    history_engine: sa.Engine,
) -> None:
    overtaken_chain(history_engine)
    backdate(history_engine, 1000)
    policy = parse_policy({"keep_days": 0, "keep_versions": 1})
    expected = [(1, 3, INSERT), (3, 2, UPDATE), (2, 4, UPDATE), (4, None, UPDATE)]
    for run in (1, 2):  # each run stopped after its first batch of one row

        def stop(progress: Progress) -> None:
            if progress.done and progress.phase == PACKAGE_VERSION.name:
                raise Interrupt

        with pytest.raises(Interrupt):
            prune(history_engine, policy, now=NOW, pause=0, batch_size=1, on_progress=stop)
        assert history_problems(history_engine) == []
        assert chains(history_engine, PACKAGE_VERSION)[(1,)] == expected[run:]
    prune(history_engine, policy, now=NOW, pause=0, batch_size=1)
    assert chains(history_engine, PACKAGE_VERSION)[(1,)] == [(4, None, UPDATE)]


def test_an_unwalkable_chain_loses_nothing(history_engine: sa.Engine) -> None:
    """A hole left by an older pruner: the disordered record is kept whole."""
    overtaken_chain(history_engine)
    with history_engine.begin() as conn:  # what the old pruner did with keep_versions = 2
        conn.execute(sa.delete(PACKAGE_VERSION).where(PACKAGE_VERSION.c.transaction_id.in_([1, 2])))
    backdate(history_engine, 1000)
    prune(history_engine, parse_policy({"keep_days": 0, "keep_versions": 1}), now=NOW, pause=0)
    assert sorted(chains(history_engine, PACKAGE_VERSION)[(1,)]) == [
        (3, 2, UPDATE),
        (4, None, UPDATE),
    ]
