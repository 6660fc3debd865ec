"""Keyset pages of history (vestige.history.paging) against the whole-history readers,
on SQLite and PostgreSQL: the same versions, the same changes, bounded statements."""

from __future__ import annotations

import functools
import itertools
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

import models
from tests.support.history_databases import count_statements
from tests.support.retention_data import (
    history_engine,
    history_url,
    overtaken_chain,
    postgres_history_url,
    recreated_while_deleted,
    sqlite_history_template,
    take_id,
)
from tests.support.web_data import write_web_history
from vestige.history import (
    Page,
    Version,
    changes,
    history,
    model_summary,
    transaction_details,
    transactions_page,
    versions_page,
)

__all__ = ["history_engine", "history_url", "postgres_history_url", "sqlite_history_template"]


def every_page(read: Any, limit: int) -> tuple[list[Any], list[Page[Any]]]:
    """Follow the ``older`` cursors from the newest page; every item and every page."""
    items: list[Any] = []
    pages: list[Page[Any]] = []
    cursor = None
    while True:
        page = read(before=cursor, limit=limit)
        pages.append(page)
        items.extend(page.items)
        if page.older is None:
            return items, pages
        cursor = page.older


def as_data(versions: list[Version]) -> list[tuple[int, str, dict[str, Any]]]:
    return [
        (v.transaction_id, v.operation.value, {c.field: (c.old, c.new) for c in v.changes})
        for v in versions
    ]


@pytest.fixture
def written(history_engine: sa.Engine) -> Any:
    models.Base.metadata.create_all(history_engine)
    return write_web_history(history_engine, many=23)


def test_a_record_paged_is_its_history_newest_first(
    history_engine: sa.Engine, written: Any
) -> None:
    with Session(history_engine) as session:
        for limit in (1, 2, 5, 50):
            check_pages(session, written.many, limit)


def check_pages(session: Session, key: int, limit: int) -> None:
    """Pages of ``limit`` versions, followed older then newer, against ``history()``."""
    whole = history(session, models.Package, key)
    paged, pages = every_page(
        lambda **kw: versions_page(session, models.Package, key=key, **kw), limit
    )
    assert as_data(paged) == as_data(whole[::-1]), limit
    assert len(pages) == -(-len(whole) // limit)
    # and back again: each page's newer cursor gives the page before it
    for earlier, later in itertools.pairwise(pages):
        assert later.newer is not None
        back = versions_page(session, models.Package, key=key, after=later.newer, limit=limit)
        assert back.items == earlier.items


def test_a_page_costs_two_statements_however_long_the_history(
    history_engine: sa.Engine, written: Any
) -> None:
    with Session(history_engine) as session:
        versions_page(session, models.Package, key=written.many, limit=5)
        with count_statements(history_engine) as statements:
            page = versions_page(session, models.Package, key=written.many, limit=5)
        assert len(page.items) == 5
        assert len(statements) == 2


def test_changes_follow_commit_order_where_ids_disagree(history_engine: sa.Engine) -> None:
    overtaken_chain(history_engine)
    with Session(history_engine) as session:
        paged, _ = every_page(
            lambda **kw: versions_page(session, models.Package, key=1, **kw), limit=2
        )
        # pages run in id order, newest first; each change is against the commit-order
        # predecessor (a -> X -> Y -> Z, written by transactions 1, 3, 2, 4)
        assert [v.transaction_id for v in paged] == [4, 3, 2, 1]
        summary = {v.transaction_id: v.changes for v in paged}
        assert [(c.old, c.new) for c in summary[3] if c.field == "summary"] == [("a", "X")]
        assert [(c.old, c.new) for c in summary[2] if c.field == "summary"] == [("X", "Y")]
        assert [(c.old, c.new) for c in summary[4] if c.field == "summary"] == [("Y", "Z")]


def test_deleted_records_are_those_whose_newest_version_is_a_delete(
    history_engine: sa.Engine,
) -> None:
    recreated_while_deleted(history_engine)
    with Session(history_engine) as session:
        # package 100 was deleted (tx 3) and inserted again (tx 2, committed after)
        assert versions_page(session, models.Package, deleted=True).items == ()
        package = session.get(models.Package, 101)
        assert package is not None
        take_id(session, 4)
        session.delete(package)
        session.commit()
        deleted = versions_page(session, models.Package, deleted=True)
        assert [(v.key, v.operation.value) for v in deleted.items] == [((101,), "delete")]
        summary = model_summary(session, models.Package)
        assert (summary.live_rows, summary.deleted) == (1, 1)


def test_a_model_paged_lists_every_version_once(history_engine: sa.Engine, written: Any) -> None:
    with Session(history_engine) as session:
        paged, _ = every_page(lambda **kw: versions_page(session, models.Package, **kw), 7)
        keys = [(v.transaction_id, v.key) for v in paged]
        assert keys == sorted(keys, reverse=True)
        total = session.scalar(sa.select(sa.func.count()).select_from(models.PackageVersion))
        assert len(set(keys)) == len(keys) == total


def test_transactions_paged_agree_with_changes(history_engine: sa.Engine, written: Any) -> None:
    with Session(history_engine) as session:
        for filters in ({}, {"user": written.alice}, {"model": models.Release}):
            whole = changes(session, limit=None, **filters)
            paged, _ = every_page(
                functools.partial(transactions_page, session, touched_limit=None, **filters), 4
            )
            assert [t.to_dict() for t in paged] == [t.to_dict() for t in reversed(whole)]


def test_search_lists_a_few_records_per_transaction(
    history_engine: sa.Engine, written: Any
) -> None:
    with Session(history_engine) as session:
        whole = {t.transaction_id: t for t in changes(session, limit=None)}
        page = transactions_page(session, limit=100, touched_limit=1)
        for found in page.items:
            tables = {record.model for record in whole[found.transaction_id].touched}
            assert len(found.touched) == len(tables)
            assert set(found.touched) <= set(whole[found.transaction_id].touched)


def test_transaction_details_has_every_column(history_engine: sa.Engine, written: Any) -> None:
    with Session(history_engine) as session:
        first = changes(session, user=written.alice, limit=1)[0]
        details = transaction_details(session, first.transaction_id)
        assert details is not None
        columns = {column.name for column in models.Transaction.__table__.columns}
        assert columns <= set(details)
        assert details["user"] == "alice"
        assert details["issued_at"] == first.issued_at
        assert transaction_details(session, 10**9) is None


def test_postgresql_estimates_big_tables_when_asked(
    history_engine: sa.Engine, written: Any, backend: str
) -> None:
    with history_engine.connect() as connection:
        if backend == "postgresql":
            connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
    with Session(history_engine) as session:
        exact = model_summary(session, models.Package)
        estimated = model_summary(session, models.Package, estimate_above=10)
        assert exact.estimated == frozenset()
        if backend == "postgresql":
            assert estimated.estimated == {"versions"}  # 3 live packages: counted
            assert estimated.versions == exact.versions  # ANALYZE saw every row
        else:
            assert estimated == exact
        assert estimated.live_rows == exact.live_rows == 3
