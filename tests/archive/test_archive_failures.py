"""An archiving prune that is killed, or whose archive fails: nothing is lost, nothing doubled.

Kills are deterministic: ``VESTIGE_ARCHIVE_FAILPOINT`` makes the pruner process call
``os._exit`` at a named step of a batch (see :mod:`vestige.archive.failpoints`). A full
disk is an fsspec file system whose Parquet writes fail after a budget of files.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

import fsspec
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from fsspec.implementations.memory import MemoryFileSystem

import models
from tests.support.archive_data import (
    POLICY,
    histories,
    records,
    version_rows,
    write_archivable_history,
)
from tests.support.project import ROOT
from tests.support.retention_data import (
    history_engine,
    history_url,
    postgres_history_url,
    sqlite_history_template,
)
from vestige.archive import FAILPOINT_ENV, FAILPOINT_EXIT, Manifest, open_target, verify
from vestige.cli import app
from vestige.errors import ArchiveError, ExitCode
from vestige.retention import prune

# fixtures, imported to be found
__all__ = ["history_engine", "history_url", "postgres_history_url", "sqlite_history_template"]

POLICY_TOML = "keep_days = 200\nkeep_versions = 2\ndeleted_keep_days = 90\n"
TIMEOUT = 300


@pytest.fixture
def written(history_engine: sa.Engine) -> sa.Engine:
    write_archivable_history(history_engine)
    return history_engine


def archived_rows(url: str, *, pending: bool = False) -> dict[str, Counter[tuple[Any, ...]]]:
    """The rows of the archive's committed files (and pending ones, if asked), per table."""
    target = open_target(url)
    manifest = Manifest.load(target)
    entries = manifest.files if pending else manifest.committed
    found: dict[str, Counter[tuple[Any, ...]]] = {}
    for entry in entries:
        if not target.exists(entry.path):
            continue
        table = pq.read_table(target.fs.open(target.path(entry.path)))
        columns = [c.name for c in models.Base.metadata.tables[entry.table].c]
        counter = found.setdefault(entry.table, Counter())
        for row in table.to_pylist():
            counter[tuple(_naive(row[name]) for name in columns)] += 1
    return found


def _naive(value: Any) -> Any:
    return value.replace(tzinfo=None) if hasattr(value, "tzinfo") else value


def run_pruner(
    url: str, archive: str, policy: Path, failpoint: str
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url, FAILPOINT_ENV: failpoint}
    command = [sys.executable, "-c", "from vestige.cli import app; app()"]
    args = ["prune", "--yes", "--json", "--batch-size", "2", "--policy", str(policy)]
    return subprocess.run(
        [*command, *args, "--archive", archive],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def assert_nothing_lost(
    before: dict[str, set[tuple[Any, ...]]], engine: sa.Engine, archive: str, *, pending: bool
) -> None:
    """Every version row is still in the database or in the archive (once, if committed)."""
    now = version_rows(engine)
    copies = archived_rows(archive, pending=pending)
    for name, rows in before.items():
        gone = {tuple(_naive(v) for v in row) for row in rows - now[name]}
        kept = copies.get(name, Counter())
        assert gone <= set(kept), f"{name}: {len(gone - set(kept))} rows gone unarchived"
        if not pending:
            assert set(kept) == gone, name
            assert all(count == 1 for count in kept.values()), f"{name}: archived twice"


@pytest.mark.parametrize("failpoint", ["staged", "written", "committed", "written:4"])
def test_killed_at_any_step_then_rerun_loses_nothing_and_doubles_nothing(
    written: sa.Engine, history_url: str, tmp_path: Path, failpoint: str
) -> None:
    keys = list(records(written))
    before_histories = histories(written, keys)
    before = version_rows(written)
    policy = tmp_path / "retention.toml"
    policy.write_text(POLICY_TOML)
    archive = str(tmp_path / "archive")

    killed = run_pruner(history_url, archive, policy, failpoint)

    assert killed.returncode == FAILPOINT_EXIT, killed.stderr[-2000:]
    assert Manifest.load(open_target(archive)).pending  # it died with a batch under way
    assert_nothing_lost(before, written, archive, pending=True)

    report = prune(written, POLICY, archive=archive, batch_size=2)

    assert report.archive is not None and report.archive.reconciled > 0
    assert not Manifest.load(open_target(archive)).pending
    assert_nothing_lost(before, written, archive, pending=False)
    assert verify(archive).ok
    assert histories(written, keys, archive=archive) == before_histories


class FullDisk(MemoryFileSystem):
    """A file system that has room for ``budget`` more Parquet files, then none."""

    protocol = ("vestigefull",)
    budget: ClassVar[int] = 0

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        if "w" in mode and path.endswith(".parquet"):
            if FullDisk.budget <= 0:
                raise OSError(errno.ENOSPC, "No space left on device")
            FullDisk.budget -= 1
        return super()._open(path, mode, **kwargs)


fsspec.register_implementation("vestigefull", FullDisk, clobber=True)


@pytest.mark.parametrize("budget", [0, 3])
def test_a_full_disk_stops_the_run_and_leaves_the_batch_in_the_database(
    written: sa.Engine, tmp_path: Path, budget: int
) -> None:
    before = version_rows(written)
    archive = f"vestigefull://{tmp_path.name}-{budget}"
    FullDisk.budget = budget

    with pytest.raises(ArchiveError, match="No space left on device") as raised:
        prune(written, POLICY, archive=archive, batch_size=2)

    assert "\n" not in str(raised.value) and archive in str(raised.value)
    manifest = Manifest.load(open_target(archive))
    assert not manifest.pending
    assert_nothing_lost(before, written, archive, pending=False)
    if budget == 0:
        assert version_rows(written) == before
    else:
        assert sum(entry.rows for entry in manifest.committed) > 0


def test_an_unwritable_directory_or_a_bad_url_changes_nothing(
    written: sa.Engine, history_url: str, tmp_path: Path
) -> None:
    before = version_rows(written)
    (tmp_path / "a-file").write_text("")
    for archive in [str(tmp_path / "a-file" / "archive"), "nosuchprotocol://bucket/x"]:
        with pytest.raises(ArchiveError):
            prune(written, POLICY, archive=archive)
        result = CliRunner().invoke(
            app,
            ["prune", "--yes", "--archive", archive, "--models", "models"],
            env={"DATABASE_URL": history_url},
        )
        assert result.exit_code == ExitCode.FAILED, result.output
        [line] = result.stderr.strip().splitlines()
        assert line.startswith("error: ") and "archive" in line
    assert version_rows(written) == before


def test_syncing_a_batch_fails_in_one_line_where_a_file_has_gone(tmp_path: Path) -> None:
    """A batch's files are written, then flushed to disk together (ArchiveTarget.sync):
    a file that is not there by then is a failure of the archive, not a traceback."""
    target = open_target(str(tmp_path / "archive"))
    target.write("t/month=2025-01/part-a-000001.parquet", b"data", durable=False)
    target.sync(["t/month=2025-01/part-a-000001.parquet"])
    with pytest.raises(ArchiveError, match=r"part-a-000002\.parquet") as raised:
        target.sync(["t/month=2025-01/part-a-000002.parquet"])
    assert "\n" not in str(raised.value)
    memory = open_target(f"memory://{tmp_path.name}")  # an object store keeps what it closed
    memory.sync(["nothing/here.parquet"])
