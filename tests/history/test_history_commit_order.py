"""Reading history when transaction ids disagree with commit order.

The histories are the ones of ``test_retention_commit_order``: written one transaction
after another with the ids two overlapping writers would have taken.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

import models
from tests.support.retention_data import (
    history_engine,
    history_url,
    overtaken_chain,
    postgres_history_url,
    recreated_while_deleted,
    sqlite_history_template,
)
from vestige.history import Operation, as_of, diff, history

__all__ = ["history_engine", "history_url", "postgres_history_url", "sqlite_history_template"]


def test_history_follows_commit_order(history_engine: sa.Engine) -> None:
    overtaken_chain(history_engine)
    with Session(history_engine) as session:
        versions = history(session, models.Package, 1)
        assert [v.transaction_id for v in versions] == [1, 3, 2, 4]
        assert [v.values["summary"] for v in versions] == ["a", "X", "Y", "Z"]
        # each version's changes are against the one before it in commit order
        assert [[(c.old, c.new) for c in v.changes if c.field == "summary"] for v in versions][
            1:
        ] == [[("a", "X")], [("X", "Y")], [("Y", "Z")]]
        assert diff(versions[1], versions[2])[0].new == "Y"
        for limit in (1, 2, 3, 4, 5):
            limited = history(session, models.Package, 1, limit=limit)
            assert [v.transaction_id for v in limited] == [1, 3, 2, 4][-limit:]
            assert limited[0].changes == versions[-len(limited)].changes


def test_a_record_inserted_again_while_deleted_reads_as_live(history_engine: sa.Engine) -> None:
    recreated_while_deleted(history_engine)
    with Session(history_engine) as session:
        versions = history(session, models.Package, 100)
        assert [(v.transaction_id, v.operation) for v in versions] == [
            (1, Operation.INSERT),
            (3, Operation.DELETE),
            (2, Operation.INSERT),
        ]
        assert versions[-1].values["summary"] == "recreated"
        now = as_of(session, models.Package, 100, 10**6)
        assert now is not None and now.values["summary"] == "recreated"
        assert as_of(session, models.Package, 100, 3) is None  # the delete's own transaction
        at_two = as_of(session, models.Package, 100, 2)
        assert at_two is not None and at_two.transaction_id == 2


def test_as_of_a_transaction_is_the_version_it_wrote(history_engine: sa.Engine) -> None:
    overtaken_chain(history_engine)
    with Session(history_engine) as session:
        for tx_id, summary in [(1, "a"), (3, "X"), (2, "Y"), (4, "Z"), (9, "Z")]:
            found = as_of(session, models.Package, 1, tx_id)
            assert found is not None and found.values["summary"] == summary, tx_id
