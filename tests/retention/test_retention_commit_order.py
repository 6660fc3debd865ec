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
from sqlalchemy.orm import Session

import models
from tests.support.retention_data import (
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
    overtaken_chain,
    postgres_history_url,
    recreated_while_deleted,
    sqlite_history_template,
)
from vestige.history import history
from vestige.retention import Progress, prune, version_tables
from vestige.retention.policy import parse_policy
from vestige.retention.prunable import prunable_keys

__all__ = ["history_engine", "history_url", "postgres_history_url", "sqlite_history_template"]

PACKAGE_VERSION = models.PackageVersion.__table__


def backdate(engine: sa.Engine, days: float) -> None:
    with engine.begin() as conn:
        conn.execute(sa.update(TX).values(issued_at=days_ago(days)))


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
