"""One pruner at a time per database.

PostgreSQL: a session-level advisory lock, held on a dedicated connection for the whole
run (it goes with the connection if the process dies). SQLite: an exclusive ``flock`` on
``<database file>.prune.lock`` beside the real file (symlinks resolved, so every path to a
database shares one lock), released by the kernel if the process dies and removed when the
pruner ends. Both are taken without waiting: a second pruner fails at once with
:class:`PrunerBusy`. A dry run only reads and takes no lock.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from vestige.database import sqlite_file
from vestige.errors import DatabaseError, PrunerBusy

__all__ = ["ADVISORY_LOCK_KEY", "BUSY_MESSAGE", "LOCK_FILE_FAILED", "LOCK_SUFFIX", "pruner_lock"]

# 64-bit key of pg_advisory_lock: the bytes "vestige!" read as a big-endian signed integer.
ADVISORY_LOCK_KEY = int.from_bytes(b"vestige!", "big", signed=True)
BUSY_MESSAGE = (
    "another pruner is running on {where}; wait for it to finish (retention runs are "
    "safe to repeat, so this run can simply be skipped)"
)
LOCK_SUFFIX = ".prune.lock"
LOCK_FILE_FAILED = (
    "cannot create the pruner's lock file {path}: {reason}; the database's directory must "
    "be writable to prune"
)


@contextmanager
def pruner_lock(engine: sa.Engine) -> Iterator[None]:
    """Hold the pruner lock of ``engine``'s database for the duration of the block.

    Raises:
        PrunerBusy: Another pruner holds it.
    """
    if engine.dialect.name == "postgresql":
        with _advisory_lock(engine):
            yield
    elif engine.dialect.name == "sqlite":
        with _file_lock(sqlite_file(engine.url)):
            yield
    else:
        yield


@contextmanager
def _advisory_lock(engine: sa.Engine) -> Iterator[None]:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        got = conn.execute(
            sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
        ).scalar_one()
        if not got:
            raise PrunerBusy(BUSY_MESSAGE.format(where=engine.url.database))
        try:
            yield
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY})


@contextmanager
def _file_lock(database: Path | None) -> Iterator[None]:
    if database is None:
        # a private in-memory database cannot be shared with another pruner
        yield
        return
    path = os.path.realpath(database) + LOCK_SUFFIX
    fd = _acquire(path, where=database.name)
    try:
        yield
    finally:
        # Unlinked while still locked: a pruner that opened this file before the unlink
        # and locks it after sees it is no longer at `path` and starts over (_acquire).
        try:
            os.unlink(path)
        finally:
            os.close(fd)


def _acquire(path: str, *, where: str) -> int:
    """Lock the file at ``path`` (made if absent); return its descriptor, locked."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise DatabaseError(LOCK_FILE_FAILED.format(path=path, reason=reason)) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise PrunerBusy(BUSY_MESSAGE.format(where=where)) from None
        if _still_at(fd, path):
            return fd
        os.close(fd)  # the previous holder removed it after we opened it: take the new one


def _still_at(fd: int, path: str) -> bool:
    try:
        linked = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (linked.st_dev, linked.st_ino) == (opened.st_dev, opened.st_ino)
