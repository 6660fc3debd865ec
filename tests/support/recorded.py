"""Reading back what a transaction recorded: user_id, remote_addr and context."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

import models


def add_maintainer(engine: sa.Engine, name: str) -> int:
    """A maintainer (the reference app's user model), committed; its id."""
    with Session(engine) as session:
        person = models.Maintainer(username=name, email=f"{name}@example.org")
        session.add(person)
        session.commit()
        return person.id


def write_package(engine: sa.Engine, name: str) -> None:
    """One transaction: a new package."""
    with Session(engine) as session:
        session.add(models.Package(name=name))
        session.commit()


def recorded(engine: sa.Engine, name: str) -> tuple[Any, Any, dict[str, Any]]:
    """user_id, remote_addr and context of the transaction that inserted package ``name``."""
    tx = models.Transaction.__table__
    version = models.PackageVersion.__table__
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(tx.c.user_id, tx.c.remote_addr, tx.c.context)
            .join(version, version.c.transaction_id == tx.c.id)
            .where(version.c.name == name, version.c.operation_type == 0)
        ).one()
    return row[0], row[1], row[2] or {}
