"""A restore under concurrent changes: locked, whole, or refused; never a mix.

Two real connections on each backend: the restore's session and another writer.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

import models
from vestige.errors import RestoreConflict
from vestige.history import history
from vestige.history.restore import BUSY, CHANGED, plan_restore, restore

COLUMNS = ("name", "summary", "homepage", "license_id", "created_at")


@pytest.fixture
def package(schema_engine: sa.Engine) -> int:
    """tx 1: the package; tx 2: summary and homepage changed."""
    with Session(schema_engine) as session:
        package = models.Package(name="httpx", summary="HTTP", homepage=None)
        session.add(package)
        session.commit()
        package.summary = "A next-generation HTTP client"
        session.commit()
        return package.id


def row(engine: sa.Engine, package_id: int) -> dict[str, object]:
    with Session(engine) as session:
        found = session.get_one(models.Package, package_id)
        return {name: getattr(found, name) for name in COLUMNS}


def target(engine: sa.Engine, package_id: int, tx: int) -> dict[str, object]:
    with Session(engine) as session:
        version = session.get_one(models.PackageVersion, (package_id, tx))
        return {name: getattr(version, name) for name in COLUMNS}


def other_writer_edits(engine: sa.Engine, package_id: int) -> None:
    """Another connection changes two columns and commits."""
    with Session(engine) as other:
        found = other.get_one(models.Package, package_id)
        found.summary = "HTTP"  # the target's value: the stale restore skipped it
        found.homepage = "https://www.python-httpx.org"
        other.commit()


def test_restore_after_a_concurrent_commit_writes_the_whole_target(
    schema_engine: sa.Engine, package: int
) -> None:
    """The restore's session loaded the record before another writer changed it."""
    with Session(schema_engine) as session:
        loaded = session.get_one(models.Package, package)
        plan_restore(session, models.Package, package, to=1)
        other_writer_edits(schema_engine, package)
        restore(session, models.Package, package, to=1)
        session.commit()
        assert loaded.homepage is None
    assert row(schema_engine, package) == target(schema_engine, package, 1)


def version_count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(sa.text("SELECT count(*) FROM package_version")) or 0)


def test_restore_refuses_when_the_record_changed_after_the_plan(
    schema_engine: sa.Engine, package: int
) -> None:
    """The plan the user saw is not the restore that would be written: nothing is."""
    with Session(schema_engine) as session:
        plan = plan_restore(session, models.Package, package, to=1)
        session.rollback()  # as the command does while a person reads the plan
        other_writer_edits(schema_engine, package)
        edited, versions = row(schema_engine, package), version_count(schema_engine)
        with pytest.raises(RestoreConflict) as refused:
            restore(session, models.Package, package, to=1, expected=plan)
        session.rollback()
    assert str(refused.value) == CHANGED.format(record="Package 1", tx=3)
    assert refused.value.exit_code == 5
    assert (row(schema_engine, package), version_count(schema_engine)) == (edited, versions)


@pytest.fixture
def impatient_engine(db_url: str, backend: str) -> Iterator[sa.Engine]:
    """An engine that gives up on a held lock at once instead of waiting for it."""
    if backend == "sqlite":
        engine = sa.create_engine(db_url, connect_args={"timeout": 0})
    else:
        engine = sa.create_engine(db_url, connect_args={"options": "-c lock_timeout=1"})
    yield engine
    engine.dispose()


def test_restore_under_an_uncommitted_edit_waits_then_refuses_a_stale_plan(
    schema_engine: sa.Engine, impatient_engine: sa.Engine, package: int
) -> None:
    """Another session holds an uncommitted edit of two columns of the record.

    The restore cannot take the record while that edit is open (with no patience it
    says so at once), writes nothing, and once the edit is committed refuses the plan
    made before it; planned again, it writes the target version exactly.
    """
    wanted = target(schema_engine, package, 1)
    with Session(schema_engine) as other, Session(impatient_engine) as session:
        editing = other.get_one(models.Package, package)
        editing.summary = "HTTP"
        editing.homepage = "https://www.python-httpx.org"
        other.flush()
        plan = plan_restore(session, models.Package, package, to=1)
        session.rollback()
        with pytest.raises(RestoreConflict) as busy:
            restore(session, models.Package, package, to=1, expected=plan)
        session.rollback()
        assert str(busy.value).startswith(BUSY.split("(", 1)[0].format(record=f"Package {package}"))
        other.commit()
        committed = row(schema_engine, package)
        assert committed["homepage"] == "https://www.python-httpx.org"
        with pytest.raises(RestoreConflict, match="changed after the plan was made"):
            restore(session, models.Package, package, to=1, expected=plan)
        session.rollback()
        assert row(schema_engine, package) == committed
        result = restore(session, models.Package, package, to=1)
        session.commit()
    assert row(schema_engine, package) == wanted
    with Session(schema_engine) as session:
        newest = history(session, models.Package, package)[-1]
    assert newest.transaction_id == result.transaction_id
    assert {name: newest.values[name] for name in COLUMNS} == wanted


@pytest.mark.parametrize(
    "backend", [pytest.param("postgresql", marks=pytest.mark.postgresql)], indirect=True
)
def test_restore_waits_for_an_uncommitted_edit_then_writes_the_whole_target(
    schema_engine: sa.Engine, package: int
) -> None:
    """Issue 13, item 5, as reported: the restore blocks behind another session's
    uncommitted edit of two columns; when that commits, the row must be the target
    version exactly, not the restore's columns over the edit's."""
    wanted = target(schema_engine, package, 1)
    started = threading.Event()
    backend_pid: list[int] = []
    failures: list[BaseException] = []

    def restore_in_thread() -> None:
        try:
            with Session(schema_engine) as session:
                backend_pid.append(session.scalar(sa.text("SELECT pg_backend_pid()")))
                started.set()
                restore(session, models.Package, package, to=1)
                session.commit()
        except BaseException as exc:  # handed to the test's thread
            failures.append(exc)
            started.set()

    with Session(schema_engine) as other:
        editing = other.get_one(models.Package, package)
        editing.summary = "HTTP"
        editing.homepage = "https://www.python-httpx.org"
        other.flush()
        worker = threading.Thread(target=restore_in_thread)
        worker.start()
        assert started.wait(30) and not failures, failures
        wait_until_blocked(schema_engine, backend_pid[0])
        other.commit()
    worker.join(60)
    assert not worker.is_alive() and not failures, failures
    assert row(schema_engine, package) == wanted


def wait_until_blocked(engine: sa.Engine, pid: int) -> None:
    """Return once PostgreSQL reports the backend ``pid`` waiting for a lock."""
    query = sa.text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid")
    pause = threading.Event()
    with engine.connect() as conn:
        for _ in range(3000):
            if conn.execute(query, {"pid": pid}).scalar() == "Lock":
                return
            conn.rollback()
            pause.wait(0.01)
    raise AssertionError(f"backend {pid} never waited for a lock")


@pytest.mark.parametrize(
    "backend", [pytest.param("sqlite", marks=pytest.mark.sqlite)], indirect=True
)
def test_sqlite_restore_waits_behind_an_uncommitted_edit_then_writes_the_whole_target(
    schema_engine: sa.Engine, db_url: str, package: int
) -> None:
    """The same on SQLite: the restore asks for the write lock (``BEGIN IMMEDIATE``, seen
    through the connection's trace callback) while another connection holds an
    uncommitted edit of two columns, waits within its busy timeout, and once the edit
    commits writes the target version exactly."""
    wanted = target(schema_engine, package, 1)
    asking = threading.Event()
    failures: list[BaseException] = []
    patient = sa.create_engine(db_url, connect_args={"timeout": 60})

    @sa.event.listens_for(patient, "connect")
    def trace(dbapi_connection: Any, record: Any) -> None:
        def seen(statement: str) -> None:
            if statement.startswith("BEGIN IMMEDIATE"):
                asking.set()

        dbapi_connection.set_trace_callback(seen)

    def restore_in_thread() -> None:
        try:
            with Session(patient) as session:
                restore(session, models.Package, package, to=1)
                session.commit()
        except BaseException as exc:  # handed to the test's thread
            failures.append(exc)
            asking.set()

    with Session(schema_engine) as other:
        editing = other.get_one(models.Package, package)
        editing.summary = "HTTP"
        editing.homepage = "https://www.python-httpx.org"
        other.flush()
        worker = threading.Thread(target=restore_in_thread)
        worker.start()
        assert asking.wait(30) and not failures, failures
        other.commit()
    worker.join(60)
    patient.dispose()
    assert not worker.is_alive() and not failures, failures
    assert row(schema_engine, package) == wanted
