"""The history API for ``AsyncSession``: the same functions, awaited.

::

    from vestige.history import aio

    async with AsyncSession(engine) as session:
        versions = await aio.history(session, Post, 7)
        recent = await aio.changes(session, context={"request_id": "f3a1"})

Each function runs its synchronous namesake of :mod:`vestige.history` through
``AsyncSession.run_sync``: the same SQL statements, on the session's connection, in its
transaction, answered in the same shapes (:class:`~vestige.history.Version`,
:class:`~vestige.history.TransactionChanges`, ...). Works with asyncpg and aiosqlite.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from vestige.history import reading
from vestige.history.plans import RestorePlan, RestoreResult
from vestige.history.reading import TransactionChanges, Version
from vestige.history.restore import plan_restore as sync_plan_restore
from vestige.history.restore import restore as sync_restore

__all__ = ["as_of", "at", "changes", "history", "plan_restore", "restore"]


async def history(
    session: AsyncSession, model: type[Any], key: Any, *, limit: int | None = None
) -> list[Version]:
    """:func:`vestige.history.history`, awaited."""
    return await session.run_sync(reading.history, model, key, limit=limit)


async def as_of(
    session: AsyncSession, model: type[Any], key: Any, when: datetime | int
) -> Version | None:
    """:func:`vestige.history.as_of`, awaited."""
    return await session.run_sync(reading.as_of, model, key, when)


async def at(session: AsyncSession, model: type[Any], key: Any, when: datetime | int) -> Version:
    """:func:`vestige.history.at`, awaited."""
    return await session.run_sync(reading.at, model, key, when)


async def changes(session: AsyncSession, **filters: Any) -> list[TransactionChanges]:
    """:func:`vestige.history.changes` (same keyword filters), awaited."""
    return await session.run_sync(lambda sync: reading.changes(sync, **filters))


async def plan_restore(
    session: AsyncSession,
    model: type[Any],
    key: Any,
    *,
    to: int | datetime,
    relations: Sequence[str] = (),
    lock: bool = False,
) -> RestorePlan:
    """:func:`vestige.history.plan_restore`, awaited."""
    return await session.run_sync(
        sync_plan_restore, model, key, to=to, relations=relations, lock=lock
    )


async def restore(
    session: AsyncSession,
    model: type[Any],
    key: Any,
    *,
    to: int | datetime,
    relations: Sequence[str] = (),
    expected: RestorePlan | None = None,
) -> RestoreResult:
    """:func:`vestige.history.restore`, awaited; commit the session afterwards."""
    return await session.run_sync(
        sync_restore, model, key, to=to, relations=relations, expected=expected
    )
