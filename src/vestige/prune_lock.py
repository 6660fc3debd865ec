"""One pruner at a time per database.

PostgreSQL: a session-level advisory lock, held on a dedicated connection for the whole
run (it goes with the connection if the process dies). SQLite: an exclusive ``flock`` on
``<database file>.prune.lock`` (released by the kernel if the process dies). Both are
taken without waiting: a second pruner fails at once with :class:`PrunerBusy`.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from vestige.errors import PrunerBusy

__all__ = ["ADVISORY_LOCK_KEY", "BUSY_MESSAGE", "pruner_lock"]

# 64-bit key of pg_advisory_lock: the bytes "vestige!" read as a big-endian signed integer.
ADVISORY_LOCK_KEY = int.from_bytes(b"vestige!", "big", signed=True)
BUSY_MESSAGE = (
    "another pruner is running on {where}; wait for it to finish (retention runs are "
    "safe to repeat, so this run can simply be skipped)"
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
        with _file_lock(engine.url.database):
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
def _file_lock(database: str | None) -> Iterator[None]:
    if not database or database == ":memory:" or database.startswith("file:"):
        # a private in-memory database cannot be shared with another pruner
        yield
        return
    path = f"{os.path.abspath(database)}.prune.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PrunerBusy(BUSY_MESSAGE.format(where=os.path.basename(database))) from None
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
