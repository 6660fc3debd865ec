"""AsyncSession with aiosqlite and asyncpg: the context crosses ``await``, the history
API's async forms answer as the sync ones do, and the bulk-write guard applies."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import Session

import models
import vestige
from tests.support.recorded import add_maintainer
from vestige.errors import UnversionedWriteError, UnversionedWriteWarning
from vestige.history import Operation, aio, history
from vestige.versioning.bulk import install_bulk_write_guard

ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


@pytest.fixture
def async_engine(schema_engine: sa.Engine, db_url: str, backend: str) -> Iterator[AsyncEngine]:
    url = sa.make_url(db_url).set(drivername=ASYNC_DRIVERS[backend])
    engine = create_async_engine(url, poolclass=sa.pool.NullPool)
    yield engine
    asyncio.run(engine.dispose())


async def _add(engine: AsyncEngine, name: str) -> int:
    async with AsyncSession(engine, expire_on_commit=False) as session:
        package = models.Package(name=name, summary="v2")
        session.add(package)
        await asyncio.sleep(0)  # the block's context survives the task switching away
        await session.flush()
        await asyncio.sleep(0)
        await session.commit()
        return package.id


def test_context_crosses_await_and_tasks_with_async_sessions(
    schema_engine: sa.Engine, async_engine: AsyncEngine
) -> None:
    ann = add_maintainer(schema_engine, "ann")

    async def scenario() -> dict[str, int]:
        async def request(name: str, request_id: str) -> int:
            with vestige.context(user=ann, request_id=request_id):
                return await _add(async_engine, name)

        ids = await asyncio.gather(request("a", "req-a"), request("b", "req-b"))
        async with AsyncSession(async_engine) as session:
            vestige.set_context(session, reason="async session")
            session.add(models.Package(name="c"))
            await session.commit()
        return dict(zip("ab", ids, strict=True))

    ids = asyncio.run(scenario())
    with Session(schema_engine) as session:
        for name, package_id in ids.items():
            (only,) = history(session, models.Package, package_id)
            assert (only.user_id, only.context) == (ann, {"request_id": f"req-{name}"})
        found = vestige.history.changes(session, context={"reason": "async session"})
    assert [tx.touched[0].model for tx in found] == ["Package"]


def test_async_history_api_answers_as_the_sync_one(
    schema_engine: sa.Engine, async_engine: AsyncEngine
) -> None:
    async def scenario() -> None:
        with vestige.context(request_id="r-1", reason="import"):
            package_id = await _add(async_engine, "httpx")
        async with AsyncSession(async_engine, expire_on_commit=False) as session:
            versions = await aio.history(session, models.Package, package_id)
            assert [v.operation for v in versions] == [Operation.INSERT]
            assert versions[0].values["summary"] == "v2"
            assert versions[0].context == {"request_id": "r-1", "reason": "import"}
            assert await aio.history(session, models.Package, package_id, limit=1) == versions
            first_tx = versions[0].transaction_id
            then = await aio.at(session, models.Package, package_id, first_tx)
            assert (then.values, then.context) == (versions[0].values, versions[0].context)
            assert await aio.as_of(session, models.Package, package_id, first_tx - 1) is None
            found = await aio.changes(session, context={"request_id": "r-1"})
            assert [tx.transaction_id for tx in found] == [first_tx]

            package = await session.get(models.Package, package_id)
            assert package is not None
            package.summary = "v3"
            await session.commit()
            plan = await aio.plan_restore(session, models.Package, package_id, to=first_tx)
            assert [row.action.value for row in plan.rows] == ["update"]
            with vestige.context(reason="undo"):
                result = await aio.restore(session, models.Package, package_id, to=first_tx)
                await session.commit()
            newest = (await aio.history(session, models.Package, package_id))[-1]
            assert newest.transaction_id == result.transaction_id
            assert newest.values["summary"] == "v2"
            assert newest.context == {"reason": "undo"}

    asyncio.run(scenario())
    with Session(schema_engine) as session:
        assert len(history(session, models.Package, 1)) == 3


@pytest.fixture
def restore_guard() -> Iterator[None]:
    yield
    install_bulk_write_guard("warn")


def test_bulk_write_guard_applies_to_async_sessions(
    schema_engine: sa.Engine, async_engine: AsyncEngine, restore_guard: None
) -> None:
    async def bulk_update(mode: str) -> None:
        install_bulk_write_guard(mode)
        async with AsyncSession(async_engine) as session:
            await session.execute(sa.update(models.Package).values(summary=mode))
            await session.commit()

    package_id = asyncio.run(_add(async_engine, "bulk"))
    with pytest.raises(UnversionedWriteError):
        asyncio.run(bulk_update("raise"))
    with pytest.warns(UnversionedWriteWarning):
        asyncio.run(bulk_update("warn"))
    with vestige.context(reason="bulk"):
        asyncio.run(bulk_update("version"))
    with Session(schema_engine) as session:
        versions = history(session, models.Package, package_id)
    assert [v.values["summary"] for v in versions] == ["v2", "version"]
    assert versions[-1].context == {"reason": "bulk"}
