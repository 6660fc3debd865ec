"""Property: random history over simulated time, a random policy, then every invariant.

Hypothesis writes packages and maintainers (inserts, updates, deletes, many-to-many links
and unlinks, the odd empty transaction) days apart, prunes with a random policy in random
batch sizes, and checks in SQL: H1-H3, the kept chains are exactly what R1-R5 allow
(an oracle computed from the history before pruning), no unreferenced transaction is
left (R6), the dry run predicted the run, and Continuum's history API still works on
what is left.
"""

from __future__ import annotations

from typing import Any

import hypothesis.strategies as st
import sqlalchemy as sa
from hypothesis import HealthCheck, event, given, settings
from sqlalchemy.orm import Session

import models
from tests.support.random_history import TABLES, empty, rules, step, write_history
from tests.support.retention_data import (
    CHANGES,
    NOW,
    TX,
    chains,
    expected_chain,
    history_engine,
    history_problems,
    history_url,
    postgres_history_url,
    sqlite_history_template,
    transaction_ids,
    unreferenced_transactions,
)
from vestige.retention import prune
from vestige.retention.policy import parse_policy

# fixtures, imported to be found
__all__ = ["history_engine", "history_url", "postgres_history_url", "sqlite_history_template"]

SETTINGS = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# two writers on two packages, overtaking each other often: ids out of commit order
contended_step = st.tuples(
    st.sampled_from(["write", "write", "write", "delete", "link"]),
    st.integers(0, 1),
    st.integers(0, 1),
    st.integers(0, 150),
)


@SETTINGS
@given(
    steps=st.lists(step, min_size=3, max_size=30),
    default=rules,
    package_rules=st.one_of(st.none(), rules),
    batch_size=st.integers(1, 6),
    overtakes=st.lists(st.booleans(), max_size=30),
)
def test_pruning_keeps_exactly_what_the_policy_allows(
    history_engine: sa.Engine,
    steps: list[tuple[str, int, int, int]],
    default: dict[str, int],
    package_rules: dict[str, int] | None,
    batch_size: int,
    overtakes: list[bool],
) -> None:
    check_pruning(history_engine, steps, default, package_rules, batch_size, overtakes)


@SETTINGS
@given(
    steps=st.lists(contended_step, min_size=6, max_size=24),
    default=rules,
    batch_size=st.integers(1, 6),
    overtakes=st.lists(st.booleans(), min_size=24, max_size=24),
)
def test_pruning_follows_commit_order_when_writers_overtake(
    history_engine: sa.Engine,
    steps: list[tuple[str, int, int, int]],
    default: dict[str, int],
    batch_size: int,
    overtakes: list[bool],
) -> None:
    check_pruning(history_engine, steps, default, None, batch_size, overtakes)


def check_pruning(
    history_engine: sa.Engine,
    steps: list[tuple[str, int, int, int]],
    default: dict[str, int],
    package_rules: dict[str, int] | None,
    batch_size: int,
    overtakes: list[bool],
) -> None:
    """Write the steps, prune, and check H1-H3, R1-R6 and the dry run."""
    engine = history_engine
    empty(engine)
    write_history(engine, steps, overtakes)
    table = {**default, "models": {"Package": package_rules}} if package_rules else default
    if not table or table == {"models": {"Package": {}}}:
        table = {"keep_versions": 1}
    policy = parse_policy(table)
    before = {name: chains(engine, version) for name, version in TABLES.items()}
    with engine.connect() as conn:
        issued = {tx: when for tx, when in conn.execute(sa.select(TX.c.id, TX.c.issued_at))}

    dry = prune(engine, policy, dry_run=True, now=NOW)
    real = prune(engine, policy, batch_size=batch_size, now=NOW, pause=0)

    event(f"versions deleted: {'some' if real.versions_deleted else 'none'}")
    disordered = any(
        end is not None and end < tx for rows in before["Package"].values() for tx, end, _ in rows
    )
    event(f"ids out of commit order: {'yes' if disordered else 'no'}")
    event(f"whole deleted histories: {'yes' if default.get('deleted_keep_days') else 'no'}")
    assert history_problems(engine) == []  # H1-H3
    referenced: set[int] = set()
    for name, version in TABLES.items():
        rules = policy.default if name == "package_maintainer" else policy.for_model(name)
        association = name == "package_maintainer"
        expected = {
            key: kept
            for key, rows in before[name].items()
            if (kept := expected_chain(rows, issued, rules, association))
        }
        after = chains(engine, version)
        assert after == expected, name  # R1-R5 exactly
        for key, rows in after.items():
            assert rows == before[name][key][-len(rows) :]  # R2: a suffix stays
            referenced |= {tx for tx, end, _ in rows} | {end for _, end, _ in rows if end}
    assert transaction_ids(engine) == referenced  # R6 and H3
    assert unreferenced_transactions(engine) == set()
    with engine.connect() as conn:
        assert set(conn.execute(sa.select(CHANGES.c.transaction_id)).scalars()) <= referenced
    assert dry.tables == real.tables
    assert dry.transactions_deleted == real.transactions_deleted

    with Session(engine) as session:
        for package in session.scalars(sa.select(models.Package)):
            versions = package.versions.all()
            assert [v.transaction_id for v in versions] == sorted(
                tx for tx, _, _ in after_packages(engine, package.id)
            )
            oldest = versions[0]
            for key, (old, new) in oldest.changeset.items():
                assert new == getattr(oldest, key)
                if oldest.previous is None:
                    assert old is None


def after_packages(engine: sa.Engine, package_id: int) -> list[tuple[Any, ...]]:
    return chains(engine, TABLES["Package"])[(package_id,)]
