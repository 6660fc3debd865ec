"""Check the history invariants H1-H3 of DESIGN.md on a database, table by table."""

from __future__ import annotations

from collections import defaultdict
from itertools import pairwise
from typing import Any

import sqlalchemy as sa

from vestige.registry import versioned_models


def history_problems(connection: sa.Connection, *, commit_order: bool = False) -> list[str]:
    """Every violation of H1-H3 in every versioned model's history, as readable lines.

    With ``commit_order`` H2 is checked on the chain the ``end_transaction_id`` links
    form (one first version, each other version the end of exactly one, one open
    version) rather than in ``transaction_id`` order: concurrent writers get their
    transaction ids at their first flush, so ids need not follow commit order.
    """
    problems: list[str] = []
    tx_ids = set(connection.execute(sa.text('SELECT id FROM "transaction"')).scalars())
    for model in versioned_models().values():
        problems += _table_problems(
            connection, model.table, model.version_table, tx_ids, commit_order
        )
    return problems


def _linked_chain_problems(name: str, key: tuple[Any, ...], chain: list[Any]) -> list[str]:
    starts = sorted(v["transaction_id"] for v in chain)
    ends = sorted(v["end_transaction_id"] for v in chain if v["end_transaction_id"] is not None)
    heads = [t for t in starts if t not in ends]
    if len(heads) != 1 or sorted([*ends, heads[0]]) != starts:
        return [f"H2 {name} {key}: versions {starts} are not one chain (ends {ends})"]
    return []


def _table_problems(
    connection: sa.Connection,
    table: sa.Table,
    version_table: sa.Table,
    tx_ids: set[int],
    commit_order: bool,
) -> list[str]:
    name = version_table.name
    pk = [column.name for column in table.primary_key]
    data = [column.name for column in table.columns]
    live = {
        tuple(row[c] for c in pk): {c: row[c] for c in data}
        for row in connection.execute(sa.select(table)).mappings()
    }
    chains: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
    for row in connection.execute(
        sa.select(version_table).order_by(version_table.c.transaction_id)
    ).mappings():
        chains[tuple(row[c] for c in pk)].append(row)
    problems = []
    for key, values in live.items():
        open_versions = [v for v in chains.get(key, []) if v["end_transaction_id"] is None]
        if len(open_versions) != 1:
            problems.append(f"H1 {name} {key}: {len(open_versions)} open versions")
        elif {c: open_versions[0][c] for c in data} != values:
            problems.append(f"H1 {name} {key}: open version differs from the live row")
    for key, chain in chains.items():
        if commit_order:
            problems += _linked_chain_problems(name, key, chain)
        for before, after in [] if commit_order else pairwise(chain):
            if before["end_transaction_id"] != after["transaction_id"]:
                problems.append(
                    f"H2 {name} {key}: version of tx {before['transaction_id']} ends at "
                    f"{before['end_transaction_id']}, next begins at {after['transaction_id']}"
                )
        if not commit_order and chain[-1]["end_transaction_id"] is not None:
            problems.append(f"H2 {name} {key}: newest version is closed")
        problems += [
            f"H3 {name} {key}: transaction {v['transaction_id']} does not exist"
            for v in chain
            if v["transaction_id"] not in tx_ids
        ]
    return problems
