"""Property: an archiving prune stopped after any batch leaves no hole, loses nothing.

With an archive on PostgreSQL the rows go month first (see ``prunable_keys``); here the
clock is hostile: transaction times step back along a chain, some transactions have no
time at all, and writers overtake each other (ids out of commit order). Hypothesis
writes such a history, stops an archiving prune after a random number of batches, and
checks that every record's history is still one chain whose oldest versions only are
gone (R2, R7); a second run finishes the job. Then the kept chains are exactly what the
policy allows, and every deleted version row is in the archive once.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pyarrow.parquet as pq
import sqlalchemy as sa
from hypothesis import HealthCheck, event, given, settings

from tests.support.random_history import TABLES, empty, write_history
from tests.support.retention_data import (
    NOW,
    TX,
    chains,
    expected_chain,
    history_engine,
    history_problems,
    history_url,
    postgres_history_url,
    sqlite_history_template,
)
from vestige.archive import Manifest, open_target
from vestige.retention import prune
from vestige.retention.policy import parse_policy

# fixtures, imported to be found
__all__ = ["history_engine", "history_url", "postgres_history_url", "sqlite_history_template"]


class Stop(Exception):
    pass


# per transaction: None takes its time away, else days added to it (back or forth)
clock_change = st.one_of(st.none(), st.integers(-90, 90), st.integers(-90, 90))
# long chains on few records, months apart
busy_step = st.tuples(
    st.sampled_from(["write", "write", "write", "write", "delete", "link"]),
    st.integers(0, 1),
    st.integers(0, 1),
    st.integers(0, 60),
)
# policies that delete something from most such histories
pruning_rules = st.fixed_dictionaries(
    {"keep_versions": st.integers(0, 2)},
    optional={"keep_days": st.integers(0, 400), "deleted_keep_days": st.integers(0, 400)},
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(busy_step, min_size=6, max_size=24),
    policy_table=pruning_rules,
    overtakes=st.lists(st.booleans(), max_size=24),
    clock=st.lists(clock_change, min_size=24, max_size=24),
    batch_size=st.integers(1, 4),
    stop_after=st.integers(1, 6),
)
def test_an_archiving_prune_stopped_anywhere_leaves_no_hole_and_loses_nothing(
    history_engine: sa.Engine,
    steps: list[tuple[str, int, int, int]],
    policy_table: dict[str, int],
    overtakes: list[bool],
    clock: list[int | None],
    batch_size: int,
    stop_after: int,
) -> None:
    engine = history_engine
    empty(engine)
    write_history(engine, steps, overtakes)
    with engine.begin() as conn:
        issued = {tx_id: when for tx_id, when in conn.execute(sa.select(TX.c.id, TX.c.issued_at))}
        for tx_id, change in zip(sorted(issued), clock, strict=False):
            when = issued[tx_id]
            issued[tx_id] = None if change is None else when + timedelta(days=change)
            conn.execute(sa.update(TX).where(TX.c.id == tx_id).values(issued_at=issued[tx_id]))
    policy = parse_policy(policy_table)
    before = {name: chains(engine, version) for name, version in TABLES.items()}
    batches = 0

    def stop(progress: Any) -> None:
        nonlocal batches
        batches += progress.done > 0
        if batches == stop_after:
            raise Stop

    with tempfile.TemporaryDirectory() as folder:
        archive = str(Path(folder) / "archive")
        try:
            prune(engine, policy, now=NOW, batch_size=batch_size, archive=archive, on_progress=stop)
            event("stopped: no (fewer batches)")
        except Stop:
            event("stopped: yes")
        assert history_problems(engine) == []  # H1-H3
        for name, version in TABLES.items():
            for key, rows in chains(engine, version).items():
                assert rows == before[name][key][-len(rows) :], (name, key)  # a suffix stays
        prune(engine, policy, now=NOW, batch_size=batch_size, archive=archive)

        assert history_problems(engine) == []
        archived: Counter[tuple[Any, ...]] = Counter()
        for entry in Manifest.load(open_target(archive)).committed:
            if entry.table in {version.name for version in TABLES.values()}:
                for row in pq.read_table(Path(archive) / entry.path).to_pylist():
                    archived[entry.table, *_version_key(TABLES, entry.table, row)] += 1
    deleted: Counter[tuple[Any, ...]] = Counter()
    for name, version in TABLES.items():
        rules_for = policy.default if name == "package_maintainer" else policy.for_model(name)
        association = name == "package_maintainer"
        after = chains(engine, version)
        for key, rows in before[name].items():
            kept = expected_chain(rows, issued, rules_for, association)
            assert after.get(key, []) == kept, (name, key)  # R1-R5 exactly
            for tx_id, _, _ in rows[: len(rows) - len(kept)]:
                deleted[version.name, *key, tx_id] += 1
    event(f"versions deleted: {'some' if deleted else 'none'}")
    assert archived == deleted  # every deleted row archived, once


def _version_key(tables: dict[str, sa.Table], name: str, row: dict[str, Any]) -> tuple[Any, ...]:
    """An archived row's record key, then its transaction."""
    table = next(version for version in tables.values() if version.name == name)
    key = [c.name for c in table.primary_key.columns if c.name != "transaction_id"]
    return (*(row[column] for column in key), row["transaction_id"])
