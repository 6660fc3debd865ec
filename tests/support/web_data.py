"""A history for the history browser's tests: the demo package, a package with many
versions, a deleted release, and a package whose values try to break the page.

Transactions are backdated to one hour apart from :data:`EPOCH`, so times are exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

import models
from models.sample_data import write_sample_data
from vestige import context
from vestige.versioning import actor

EPOCH = datetime(2026, 1, 1)
#: Stored in a record, each must come back as text, never as markup.
SCRIPT = "<script>alert('owned')</script>"
QUOTES = '"\' onmouseover="alert(1)" data-x=\''
LONG_UNICODE = "Ünïcødé✓漢字𝔘" * 45  # 495 characters, no space to break at
MANY = 120


@dataclass(frozen=True)
class WebHistory:
    """The keys and transactions the tests look for."""

    demo: int
    many: int
    hostile: int
    deleted_release: int
    alice: int


def hour(tx_id: int) -> datetime:
    return EPOCH + timedelta(hours=tx_id)


def write_web_history(engine: sa.Engine, many: int = MANY) -> WebHistory:
    with Session(engine) as session:
        demo = write_sample_data(session)
        alice = session.scalar(
            sa.select(models.Maintainer.id).where(models.Maintainer.username == "alice")
        )
        assert alice is not None
        with actor(user_id=alice, remote_addr="192.0.2.10"):
            busy = models.Package(name="busy", summary="version 0")
            session.add(busy)
            session.commit()
        for number in range(1, many):
            busy.summary = f"version {number}"
            session.commit()
        with context(reason=SCRIPT, request_id=QUOTES):
            hostile = models.Package(name=QUOTES, summary=SCRIPT, homepage=LONG_UNICODE)
            session.add(hostile)
            session.commit()
        package = session.get(models.Package, demo)
        assert package is not None
        release = package.releases[-1]
        deleted_release = release.id
        with context(user=alice, remote_addr="192.0.2.10", reason="yanked by mistake"):
            session.delete(release)
            session.commit()
        transaction = models.Transaction.__table__
        for (tx_id,) in session.execute(sa.select(transaction.c.id)):
            session.execute(
                transaction.update().where(transaction.c.id == tx_id).values(issued_at=hour(tx_id))
            )
        session.commit()
        return WebHistory(demo, busy.id, hostile.id, deleted_release, alice)
