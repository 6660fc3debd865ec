"""Property: random history over simulated time, a random policy, then every invariant.

Hypothesis writes packages and maintainers (inserts, updates, deletes, many-to-many links
and unlinks, the odd empty transaction) days apart, prunes with a random policy in random
batch sizes, and checks in SQL: H1-H3, the kept chains are exactly what R1-R5 allow
(an oracle computed from the history before pruning), no unreferenced transaction is
left (R6), the dry run predicted the run, and Continuum's history API still works on
what is left.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import hypothesis.strategies as st
import sqlalchemy as sa
from hypothesis import HealthCheck, event, given, settings
from retention_support import (
    ASSOCIATION_VERSION_TABLE,
    CHANGES,
    DELETE,
    ENTITY_VERSION_TABLES,
    NOW,
    TX,
    chains,
    history_engine,
    history_problems,
    history_url,
    plain,
    postgres_history_url,
    sqlite_history_template,
    transaction_ids,
    unreferenced_transactions,
)
from sqlalchemy.orm import Session

import models
from vestige.policy import Rules, parse_policy
from vestige.retention import prune

# fixtures, imported to be found
__all__ = ["history_engine", "history_url", "postgres_history_url", "sqlite_history_template"]

START = NOW - timedelta(days=1500)
TABLES = {
    "Package": ENTITY_VERSION_TABLES["package"],
    "Maintainer": ENTITY_VERSION_TABLES["maintainer"],
    "package_maintainer": ASSOCIATION_VERSION_TABLE,
}

step = st.tuples(
    st.sampled_from(["write", "write", "write", "delete", "link", "empty"]),
    st.integers(0, 3),  # which package
    st.integers(0, 2),  # which maintainer
    st.integers(0, 150),  # days since the previous step
)
rules = st.fixed_dictionaries(
    {},
    optional={
        "keep_days": st.integers(0, 500),
        "keep_versions": st.integers(0, 4),
        "deleted_keep_days": st.integers(0, 500),
    },
)


def write_history(engine: sa.Engine, steps: list[tuple[str, int, int, int]]) -> None:
    """Play the steps, one transaction each, then date each transaction on the clock."""
    when = START
    dated: list[dict[str, Any]] = []
    with Session(engine) as session:
        packages: dict[int, models.Package] = {}
        maintainers: dict[int, models.Maintainer] = {}
        for n, (kind, p, m, gap) in enumerate(steps):
            when += timedelta(days=gap)
            package = packages.get(p)
            if kind == "write" and package is None:
                packages[p] = models.Package(name=f"p{n}", summary=str(n))
                session.add(packages[p])
            elif kind == "write" and package is not None:
                package.summary = str(n)
            elif kind == "delete" and package is not None:
                session.delete(packages.pop(p))
            elif kind == "link" and package is not None:
                if m not in maintainers:
                    maintainers[m] = models.Maintainer(username=f"m{n}", email=f"m{n}@x.org")
                if maintainers[m] in package.maintainers:
                    package.maintainers.remove(maintainers[m])
                else:
                    package.maintainers.append(maintainers[m])
            else:
                session.execute(sa.insert(TX).values(issued_at=when))  # an empty transaction
            session.commit()
            dated.append(
                {"tx": session.execute(sa.select(sa.func.max(TX.c.id))).scalar_one(), "when": when}
            )
        session.execute(
            sa.update(TX)
            .where(TX.c.id == sa.bindparam("tx"))
            .values(issued_at=sa.bindparam("when")),
            dated,
        )
        session.commit()


def empty(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for table in reversed(models.Base.metadata.sorted_tables):
            conn.execute(sa.delete(plain(table)))


def expected_chain(
    rows: list[tuple[Any, ...]], issued: dict[int, datetime], rules: Rules, association: bool
) -> list[tuple[Any, ...]]:
    """The oracle: what R1-R5 leave of one record's chain (oldest first)."""
    newest = rows[-1]
    whole = (
        rules.deleted_keep_days is not None
        and newest[2] == DELETE
        and issued[newest[0]] < NOW - timedelta(days=rules.deleted_keep_days)
    )

    def eligible(i: int) -> bool:
        if whole:
            return True
        if not rules.prunes_superseded or i == len(rows) - 1:
            return False
        superseded = issued[rows[i + 1][0]]
        return (
            len(rows) - i > max(1, rules.keep_versions or 0)
            and (association or rows[i][1] is not None)
            and (rules.keep_days is None or superseded < NOW - timedelta(days=rules.keep_days))
        )

    prefix = 0
    while prefix < len(rows) and eligible(prefix):
        prefix += 1
    return rows[prefix:]


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(step, min_size=3, max_size=30),
    default=rules,
    package_rules=st.one_of(st.none(), rules),
    batch_size=st.integers(1, 6),
)
def test_pruning_keeps_exactly_what_the_policy_allows(
    history_engine: sa.Engine,
    steps: list[tuple[str, int, int, int]],
    default: dict[str, int],
    package_rules: dict[str, int] | None,
    batch_size: int,
) -> None:
    engine = history_engine
    empty(engine)
    write_history(engine, steps)
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
            assert [v.transaction_id for v in versions] == [
                tx for tx, _, _ in after_packages(engine, package.id)
            ]
            oldest = versions[0]
            for key, (old, new) in oldest.changeset.items():
                assert new == getattr(oldest, key)
                if oldest.previous is None:
                    assert old is None


def after_packages(engine: sa.Engine, package_id: int) -> list[tuple[Any, ...]]:
    return chains(engine, TABLES["Package"])[(package_id,)]
