"""Real concurrent writers on PostgreSQL, then pruning with each rule (R1, R2, H1-H3).

Four processes write overlapping packages. In every round each one first takes its
transaction id (a flush of a package of its own), waits at a barrier until all four have
one, and only then writes the shared packages and commits: the commits land in whatever
order the row locks allow, so ids and commit order disagree, as they do in production.
The test checks that they really did, then prunes a copy of that history with each rule
and compares what is left with the oracle of the property test, in commit order.
"""

from __future__ import annotations

import multiprocessing
import random
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

import models
from tests.support.retention_data import (
    DELETE,
    NOW,
    PACKAGE_VERSION_TABLE,
    TX,
    chains,
    expected_chain,
    history_engine,
    history_problems,
    history_url,
    postgres_history_url,
    restore,
    snapshot,
    sqlite_history_template,
)
from vestige.history import history
from vestige.retention import prune
from vestige.retention.policy import parse_policy

__all__ = ["history_engine", "history_url", "postgres_history_url", "sqlite_history_template"]

WRITERS = 4
ROUNDS = 12
SHARED = list(range(1, 7))
OWN = 1000  # writer n's own package is OWN + n


def writer(url: str, number: int, rounds: int, barrier: Any, outcomes: Any) -> None:
    """One process's rounds; puts (committed, rolled back) on ``outcomes``."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    rng = random.Random(number)
    committed = rolled_back = 0
    try:
        for round_ in range(rounds):
            with Session(engine) as session:
                own = session.get(models.Package, OWN + number)
                assert own is not None
                own.summary = f"{number}.{round_}"
                session.flush()  # Continuum numbers the transaction here
                barrier.wait(timeout=120)
                try:
                    for key in rng.sample(SHARED, 3):
                        package = session.get(models.Package, key)
                        if package is None:
                            session.add(
                                models.Package(
                                    id=key, name=f"shared{key}", summary=f"again {number}"
                                )
                            )
                        elif rng.random() < 0.2:
                            session.delete(package)
                        else:
                            package.summary = f"{number}.{round_}"
                        session.flush()
                    session.commit()
                    committed += 1
                except (sa.exc.OperationalError, sa.exc.IntegrityError, StaleDataError):
                    # a deadlock, a concurrent insert of the same key, a row deleted under us
                    session.rollback()
                    rolled_back += 1
    except BaseException:
        barrier.abort()
        raise
    finally:
        engine.dispose()
    outcomes.put((committed, rolled_back))


def write_concurrently(url: str, rounds: int) -> tuple[int, int]:
    """Run the writers to the end; (transactions committed, rolled back) in all."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(WRITERS)
    outcomes = context.Queue()
    processes = [
        context.Process(target=writer, args=(url, n, rounds, barrier, outcomes))
        for n in range(WRITERS)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=300)
    assert all(process.exitcode == 0 for process in processes), "a writer failed"
    results = [outcomes.get(timeout=10) for _ in processes]
    return sum(c for c, _ in results), sum(r for _, r in results)


def out_of_order(engine: sa.Engine) -> int:
    """Versions superseded by a transaction numbered before their own."""
    version = PACKAGE_VERSION_TABLE
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(version)
                .where(version.c.end_transaction_id < version.c.transaction_id)
            ).scalar_one()
        )


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_pruning_real_concurrent_history_keeps_chains_in_commit_order(
    history_engine: sa.Engine, history_url: str
) -> None:
    with Session(history_engine) as session:
        session.add_all(models.Package(id=key, name=f"shared{key}", summary="0") for key in SHARED)
        session.add_all(models.Package(id=OWN + n, name=f"own{n}") for n in range(WRITERS))
        session.commit()
    committed = 0
    for _ in range(5):  # bounded: one round of writers almost always does it
        committed += write_concurrently(history_url, ROUNDS)[0]
        if out_of_order(history_engine):
            break
    disordered = out_of_order(history_engine)
    assert disordered > 0, "the writers never committed out of id order"
    assert committed > 0
    assert history_problems(history_engine) == []

    # a day between transactions, the newest yesterday
    with history_engine.begin() as conn:
        newest = conn.execute(sa.select(sa.func.max(TX.c.id))).scalar_one()
        for tx_id in range(1, newest + 1):
            conn.execute(
                sa.update(TX)
                .where(TX.c.id == tx_id)
                .values(issued_at=NOW - timedelta(days=newest - tx_id + 1))
            )
        issued = {tx_id: when for tx_id, when in conn.execute(sa.select(TX.c.id, TX.c.issued_at))}
    before = chains(history_engine, PACKAGE_VERSION_TABLE)
    original = snapshot(history_engine)
    for table in (
        {"keep_days": 0, "keep_versions": 2},
        {"keep_days": 10},
        {"keep_days": 0, "keep_versions": 1, "deleted_keep_days": 5},
        {"deleted_keep_days": 0},
    ):
        restore(history_engine, original)
        policy = parse_policy(table)
        prune(history_engine, policy, now=NOW, pause=0, batch_size=3)
        assert history_problems(history_engine) == [], table  # H1-H3, H2 in commit order
        after = chains(history_engine, PACKAGE_VERSION_TABLE)
        expected = {
            key: kept
            for key, rows in before.items()
            if (kept := expected_chain(rows, issued, policy.for_model("Package"), False))
        }
        assert after == expected, table  # R1-R5 in commit order
        for key, rows in after.items():
            assert rows == before[key][-len(rows) :], (table, key)  # R2: a suffix stays
        with Session(history_engine) as session:
            for package in session.scalars(sa.select(models.Package)):
                versions = history(session, models.Package, package.id)
                assert versions[-1].operation is not DELETE
                assert versions[-1].values["summary"] == package.summary  # R1
