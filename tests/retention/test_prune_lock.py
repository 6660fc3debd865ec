"""The pruner's lock: one pruner per database, whatever path names it; no file left behind.

SQLite's lock is a file beside the database; PostgreSQL's an advisory lock. A dry run only
reads and takes neither.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

import models
from tests.support.retention_data import (
    history_engine,
    history_url,
    postgres_history_url,
    sqlite_history_template,
)
from vestige.errors import DatabaseError, PrunerBusy
from vestige.retention import prune
from vestige.retention.lock import LOCK_FILE_FAILED, LOCK_SUFFIX, pruner_lock
from vestige.retention.policy import Policy, Rules
from vestige.testing import fast_sqlite  # noqa: F401 (a fixture)

# fixtures, imported to be found
__all__ = ["history_engine", "history_url", "postgres_history_url", "sqlite_history_template"]

pytestmark = pytest.mark.usefixtures("fast_sqlite")
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
POLICY = Policy(Rules(keep_days=1))
LATER = datetime.now(UTC) + timedelta(days=10)  # the two superseded versions are due


def _write_history(engine: sa.Engine) -> None:
    with Session(engine) as session:
        package = models.Package(name="attrs", summary="v0")
        session.add(package)
        session.commit()
        for summary in ("v1", "v2"):
            package.summary = summary
            session.commit()


def _lock_files(engine: sa.Engine) -> list[Path]:
    if engine.dialect.name != "sqlite":
        return []
    return sorted(Path(str(engine.url.database)).parent.glob("*" + LOCK_SUFFIX))


def test_a_dry_run_takes_no_lock(history_engine: sa.Engine) -> None:
    _write_history(history_engine)
    report = prune(history_engine, POLICY, dry_run=True, now=LATER, pause=0)
    assert _lock_files(history_engine) == []
    with pruner_lock(history_engine):
        beside = prune(history_engine, POLICY, dry_run=True, now=LATER, pause=0)
    assert (report.dry_run, report.versions_deleted) == (True, 2)
    assert beside.versions_deleted == 2


@SQLITE_ONLY
def test_the_lock_file_goes_when_the_pruner_ends(history_engine: sa.Engine) -> None:
    _write_history(history_engine)
    database = Path(str(history_engine.url.database))
    with pruner_lock(history_engine):
        assert _lock_files(history_engine) == [Path(f"{database}{LOCK_SUFFIX}")]
    assert _lock_files(history_engine) == []
    assert prune(history_engine, POLICY, now=LATER, pause=0).versions_deleted == 2
    assert _lock_files(history_engine) == []
    with pytest.raises(RuntimeError), pruner_lock(history_engine):
        raise RuntimeError("a pruner failing")
    assert _lock_files(history_engine) == []


@SQLITE_ONLY
def test_a_symlinked_path_shares_the_lock(history_engine: sa.Engine, tmp_path: Path) -> None:
    _write_history(history_engine)
    link = tmp_path / "elsewhere" / "app.db"
    link.parent.mkdir()
    link.symlink_to(Path(str(history_engine.url.database)))
    through_link = sa.create_engine(f"sqlite:///{link}")
    with pruner_lock(history_engine), pytest.raises(PrunerBusy):
        prune(through_link, POLICY, now=LATER, pause=0)
    with pruner_lock(through_link), pytest.raises(PrunerBusy):
        prune(history_engine, POLICY, now=LATER, pause=0)
    as_uri = sa.create_engine(f"sqlite:///file:{link}?uri=true")  # a URI filename, too
    with pruner_lock(as_uri), pytest.raises(PrunerBusy):
        prune(history_engine, POLICY, now=LATER, pause=0)
    assert list(link.parent.iterdir()) == [link]  # the lock is beside the real file
    through_link.dispose()
    as_uri.dispose()


@SQLITE_ONLY
def test_pruners_never_overlap_while_lock_files_come_and_go(
    history_engine: sa.Engine, tmp_path: Path
) -> None:
    link = tmp_path / "link.db"
    link.symlink_to(Path(str(history_engine.url.database)))
    engines = [history_engine, sa.create_engine(f"sqlite:///{link}")]
    guard = threading.Lock()
    holders: list[int] = []
    overlaps: list[list[int]] = []
    taken = [0] * 4

    def pruner(number: int) -> None:
        for _ in range(1500):
            try:
                with pruner_lock(engines[number % 2]):
                    with guard:
                        holders.append(number)
                        if len(holders) > 1:
                            overlaps.append(list(holders))
                    taken[number] += 1
                    with guard:
                        holders.remove(number)
            except PrunerBusy:
                pass

    threads = [threading.Thread(target=pruner, args=(number,)) for number in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == []
    assert all(taken), taken  # every pruner got the lock some of the time
    assert _lock_files(history_engine) == []
    engines[1].dispose()


@SQLITE_ONLY
def test_an_unwritable_directory_is_one_line(history_engine: sa.Engine, tmp_path: Path) -> None:
    database = Path(str(history_engine.url.database))
    lock = Path(f"{database}{LOCK_SUFFIX}")
    lock.mkdir()  # the lock file cannot be made (as in a read-only directory, also for root)
    with pytest.raises(DatabaseError) as error, pruner_lock(history_engine):
        pass
    assert str(error.value) == LOCK_FILE_FAILED.format(path=lock, reason="Is a directory")
