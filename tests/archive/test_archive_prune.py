"""``prune(archive=...)`` on SQLite and PostgreSQL: what is written, and history read back."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

import models
from tests.support.archive_data import (
    POLICY,
    histories,
    records,
    version_rows,
    write_archivable_history,
)
from tests.support.retention_data import (
    NOW,
    TX,
    commit_at,
    history_engine,
    history_problems,
    history_url,
    overtaken_chain,
    postgres_history_url,
    sqlite_history_template,
    take_id,
)
from vestige.archive import MANIFEST, ArchiveReader, Manifest, open_target, verify
from vestige.history import as_of, history, use_archive
from vestige.retention import prune
from vestige.retention.policy import parse_policy

# fixtures, imported to be found
__all__ = ["history_engine", "history_url", "postgres_history_url", "sqlite_history_template"]

PACKAGE_VERSION = models.PackageVersion.__table__
PART = r"(?P<table>\w+)/month=(?P<month>\d{4}-\d{2})/part-(?P<run>[\w-]+)-(?P<batch>\d{6})\.parquet"


@pytest.fixture
def written(history_engine: sa.Engine) -> sa.Engine:
    write_archivable_history(history_engine)
    return history_engine


def test_history_after_an_archiving_prune_equals_history_before(
    written: sa.Engine, tmp_path: Path
) -> None:
    keys = list(records(written))
    before = histories(written, keys)
    archive = str(tmp_path / "archive")

    report = prune(written, POLICY, archive=archive, batch_size=3)

    assert report.versions_deleted > 10 and report.transactions_deleted > 0
    assert histories(written, keys) != before  # the database alone lost versions
    assert histories(written, keys, archive=archive) == before
    assert report.archive is not None and report.archive.files > 0
    # version rows, transactions, and their transaction_changes rows
    assert report.archive.rows > report.versions_deleted + report.transactions_deleted


def test_as_of_an_archived_moment_and_use_archive_on_a_session(
    written: sa.Engine, tmp_path: Path
) -> None:
    archive = str(tmp_path / "archive")
    with Session(written) as session:
        package = session.scalar(sa.select(models.Package).where(models.Package.name == "a"))
        assert package is not None
        first = history(session, models.Package, package.id)[0]
        expected = as_of(session, models.Package, package.id, first.transaction_id)
    prune(written, POLICY, archive=archive)
    with Session(written) as session:
        assert history(session, models.Package, package.id)[0].pruned_before
        use_archive(session, archive)
        found = as_of(session, models.Package, package.id, first.transaction_id)
        assert found is not None and expected is not None
        assert found.to_dict() == expected.to_dict()
        assert history(session, models.Package, package.id)[0].to_dict() == first.to_dict()


def test_every_deleted_row_is_archived_once_with_the_layout_and_manifest(
    written: sa.Engine, tmp_path: Path
) -> None:
    before = version_rows(written)
    with written.connect() as conn:
        transactions = {
            row.id: row for row in conn.execute(sa.select(models.Transaction.__table__))
        }
    archive = tmp_path / "archive"

    report = prune(written, POLICY, archive=str(archive), batch_size=4)

    after = version_rows(written)
    manifest = json.loads((archive / MANIFEST).read_text())
    entries = manifest["files"]
    assert entries and all(entry["status"] == "committed" for entry in entries)
    paths = sorted(str(path.relative_to(archive)) for path in archive.rglob("*.parquet"))
    assert paths == sorted(entry["path"] for entry in entries)
    assert not list(archive.glob("_journal/*"))  # folded into manifest.json at the end
    archived: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        match = re.fullmatch(PART, entry["path"])
        assert match, entry["path"]
        assert match["table"] == entry["table"] and match["month"] == entry["month"]
        assert match["run"] == report.archive.run if report.archive else False
        table = pq.read_table(archive / entry["path"])
        assert table.num_rows == entry["rows"]
        rows = table.to_pylist()
        keys = [tuple(row[name] for name in entry["key_columns"]) for row in rows]
        assert keys == sorted(keys), entry["path"]  # sorted by key, then transaction
        assert [list(keys[0]), list(keys[-1])] == [entry["key_min"], entry["key_max"]]
        archived.setdefault(entry["table"], []).extend(rows)
        # the month is the month of the row's transaction
        tx_column = "id" if entry["table"] == "transaction" else "transaction_id"
        for row in rows:
            issued = transactions[row[tx_column]].issued_at
            assert issued.strftime("%Y-%m") == entry["month"]
    for name, rows_before in before.items():
        columns = [column.name for column in models.Base.metadata.tables[name].c]
        gone = rows_before - after[name]
        copies = [tuple(row[column] for column in columns) for row in archived.get(name, [])]
        assert len(copies) == len(set(copies)), name  # none archived twice
        assert {_naive(copy) for copy in copies} == {_naive(row) for row in gone}, name
    assert len(archived["transaction"]) == report.transactions_deleted
    assert sum(len(rows) for name, rows in archived.items() if name.endswith("_version")) == (
        report.versions_deleted
    )
    assert "transaction_changes" in archived
    assert verify(str(archive)).ok


def _naive(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(value.replace(tzinfo=None) if hasattr(value, "tzinfo") else value for value in row)


def test_an_archive_on_an_fsspec_url_reads_back_through_duckdb(
    written: sa.Engine, tmp_path: Path
) -> None:
    keys = list(records(written))
    before = histories(written, keys)
    url = f"memory://vestige-{tmp_path.name}"

    prune(written, POLICY, archive=url, batch_size=5)

    manifest = Manifest.load(open_target(url))
    assert manifest.committed and not manifest.pending
    with ArchiveReader(url) as reader:
        assert histories(written, keys, archive=reader) == before
    assert verify(url).ok


def test_a_dry_run_archives_nothing(written: sa.Engine, tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    archive.mkdir()
    before = version_rows(written)
    report = prune(written, POLICY, archive=str(archive), dry_run=True)
    assert report.versions_deleted > 0 and report.archive is not None
    assert version_rows(written) == before
    assert list(archive.iterdir()) == []


def test_a_second_run_archives_nothing_more(written: sa.Engine, tmp_path: Path) -> None:
    archive = str(tmp_path / "archive")
    prune(written, POLICY, archive=archive)
    files = len(Manifest.load(open_target(archive)).files)
    again = prune(written, POLICY, archive=archive)
    assert again.versions_deleted == 0 and again.archive is not None and again.archive.rows == 0
    assert len(Manifest.load(open_target(archive)).files) == files


def test_history_across_the_archive_follows_commit_order_where_ids_disagree(
    history_engine: sa.Engine, tmp_path: Path
) -> None:
    """Continuum numbers a transaction at its first flush: tx 3 committed before tx 2.
    The archived part and the database part still join into the chain in commit order."""
    overtaken_chain(history_engine)
    before = histories(history_engine, [(models.Package, (1,))])
    archive = str(tmp_path / "archive")

    report = prune(history_engine, parse_policy({"keep_versions": 1}), archive=archive)

    assert report.versions_deleted == 3
    with Session(history_engine) as session:
        assert [v.values["summary"] for v in history(session, models.Package, 1)] == ["Z"]
        summaries = [
            v.values["summary"] for v in history(session, models.Package, 1, archive=archive)
        ]
    assert summaries == ["a", "X", "Y", "Z"]
    assert histories(history_engine, [(models.Package, (1,))], archive=archive) == before


class Interrupt(Exception):
    pass


def prune_one_version_then_stop(engine: sa.Engine, policy: Any, archive: str) -> None:
    """An archiving prune in batches of one, stopped after its first batch of versions."""

    def stop(progress: Any) -> None:
        if progress.done and progress.phase == "package_version":
            raise Interrupt

    with pytest.raises(Interrupt):
        prune(engine, policy, now=NOW, batch_size=1, on_progress=stop, archive=archive)


def test_batches_go_month_first_yet_each_chain_oldest_first_in_commit_order(
    history_engine: sa.Engine, tmp_path: Path
) -> None:
    """With an archive on PostgreSQL, batches are taken month first, so that a batch is
    written as a file or two per table. Here tx 2 was issued months before tx 3 but
    committed after it: ordered by its own month, package 1's version Y would go before X
    and leave a hole, so package 1's rows all take the month of its newest transaction.
    Stopped after every batch of one row, no run leaves a hole, and each row lands once,
    in the partition of its own transaction's month."""
    overtaken_chain(history_engine)  # package 1: a(tx 1) -> X(tx 3) -> Y(tx 2) -> Z(tx 4)
    with Session(history_engine) as session:  # package 2: one old version, one kept
        package = models.Package(id=2, name="q", summary="old")
        take_id(session, 5)
        session.add(package)
        session.commit()
        take_id(session, 6)
        package.summary = "new"
        session.commit()
    issued = {1: datetime(2025, 1, 10), 3: datetime(2025, 4, 10), 2: datetime(2025, 2, 10)}
    issued |= {4: datetime(2025, 5, 1), 5: datetime(2025, 3, 1), 6: datetime(2025, 5, 2)}
    with history_engine.begin() as conn:
        for tx_id, moment in issued.items():
            conn.execute(sa.update(TX).where(TX.c.id == tx_id).values(issued_at=moment))
    archive = str(tmp_path / "archive")
    policy = parse_policy({"keep_days": 0, "keep_versions": 1})
    gone: list[list[int]] = []
    for _ in range(4):  # one version a run: package 1's a, q's old, X, Y
        prune_one_version_then_stop(history_engine, policy, archive)
        assert history_problems(history_engine) == []
        with history_engine.connect() as conn:
            left = conn.execute(sa.select(PACKAGE_VERSION.c.transaction_id)).scalars().all()
        gone.append(sorted(set(issued) - set(left)))
    if history_engine.dialect.name == "postgresql":
        # month first: q's old version (Mar), then package 1's a, X, Y, which all take
        # May, the month of its newest transaction (Z), as time steps back from X to Y
        assert gone == [[5], [1, 5], [1, 3, 5], [1, 2, 3, 5]]
    else:  # SQLite: record first (see the engine's _keys)
        assert gone == [[1], [1, 3], [1, 2, 3], [1, 2, 3, 5]]
    files = Manifest.load(open_target(archive)).committed
    months = {
        row["transaction_id"]: entry.month
        for entry in files
        if entry.table == "package_version"
        for row in pq.read_table(Path(archive) / entry.path).to_pylist()
    }
    assert months == {1: "2025-01", 5: "2025-03", 3: "2025-04", 2: "2025-02"}
    assert sum(entry.rows for entry in files if entry.table == "package_version") == 4


def test_a_row_that_moved_after_planning_is_archived_once_in_its_own_month(
    history_engine: sa.Engine, tmp_path: Path
) -> None:
    """PostgreSQL deletes a batch by physical address, with each row's month from the
    keys; a row that an UPDATE moved after planning is deleted by key, its month looked
    up with it (SQLite always deletes by key)."""
    with Session(history_engine) as session:
        package = models.Package(id=5, name="moving", summary="v0")
        session.add(package)
        txs = [commit_at(session, datetime(2025, 1, 15))]
        for i, when in enumerate([datetime(2025, 3, 15), datetime(2025, 5, 15)], start=1):
            package.summary = f"v{i}"
            txs.append(commit_at(session, when))
    oldest = (PACKAGE_VERSION.c.id == 5) & (PACKAGE_VERSION.c.transaction_id == txs[0])

    def move_the_oldest_version(progress: Any) -> None:
        if progress.phase == "package_version" and progress.done == 0:
            with history_engine.begin() as conn:
                conn.execute(sa.update(PACKAGE_VERSION).where(oldest).values(summary="moved"))

    archive = str(tmp_path / "archive")
    policy = parse_policy({"keep_days": 0, "keep_versions": 1})
    report = prune(
        history_engine, policy, now=NOW, archive=archive, on_progress=move_the_oldest_version
    )

    assert report.versions_deleted == 2
    files = [
        e for e in Manifest.load(open_target(archive)).committed if e.table == "package_version"
    ]
    archived = {
        (row["transaction_id"], row["summary"], entry.month)
        for entry in files
        for row in pq.read_table(Path(archive) / entry.path).to_pylist()
    }
    assert archived == {(txs[0], "moved", "2025-01"), (txs[1], "v1", "2025-03")}


def test_a_chain_whose_time_runs_backwards_or_is_unknown_is_deleted_oldest_first(
    history_engine: sa.Engine, tmp_path: Path
) -> None:
    """Month-first batches need a month that never decreases along a chain. A
    transaction with no time (``issued_at`` NULL), or a clock that went back between
    two versions, breaks that for its record: package 7's oldest version has no time,
    package 8's second version was issued before its first. Stopped after every batch
    of one row, no run leaves a hole, and every row is archived once."""
    issued: dict[int, datetime | None] = {}
    for key, times in [
        (7, [None, datetime(2025, 1, 10), datetime(2025, 3, 10), datetime(2025, 5, 10)]),
        (8, [datetime(2025, 4, 10), datetime(2025, 2, 10), datetime(2025, 6, 1)]),
    ]:
        with Session(history_engine) as session:
            package = models.Package(id=key, name=f"p{key}", summary="v0")
            session.add(package)
            for number, when in enumerate(times):
                package.summary = f"v{number}"
                session.flush()
                tx_id = int(session.execute(sa.select(sa.func.max(TX.c.id))).scalar_one())
                session.execute(sa.update(TX).where(TX.c.id == tx_id).values(issued_at=when))
                session.commit()
                issued[tx_id] = when
    archive = str(tmp_path / "archive")
    policy = parse_policy({"keep_days": 0, "keep_versions": 1})
    with history_engine.connect() as conn:
        before = set(conn.execute(sa.select(PACKAGE_VERSION.c.transaction_id)).scalars())
    prunable = len(before) - 2
    for _ in range(prunable):
        prune_one_version_then_stop(history_engine, policy, archive)
        assert history_problems(history_engine) == []
    with history_engine.connect() as conn:
        left = set(conn.execute(sa.select(PACKAGE_VERSION.c.transaction_id)).scalars())
    assert len(left) == 2
    files = [
        entry
        for entry in Manifest.load(open_target(archive)).committed
        if entry.table == "package_version"
    ]
    archived = [
        row["transaction_id"]
        for entry in files
        for row in pq.read_table(Path(archive) / entry.path).to_pylist()
    ]
    assert sorted(archived) == sorted(before - left)
