"""Make a year of history to prune: five packages changed once a month, one deleted.

    python make_history.py

Round 0 adds the packages (and "leftpad"); each of the 11 rounds after it changes every
package's summary; round 6 deletes leftpad. Each round is one transaction, backdated
so that round k happened 5 + 30 * (11 - k) days ago: the oldest is 335 days old.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from db import START_OVER, engine
from sqlalchemy.orm import Session

from models import Package, Release, utc_now

NAMES = ("requests", "attrs", "flask", "click", "rich")
ROUNDS = 12
DAYS_APART = 30
DELETE_ROUND = 6
ALREADY_THERE = "there is history already; to start over: " + START_OVER
transaction = sa.table("transaction", sa.column("id"), sa.column("issued_at"))


def main() -> None:
    with Session(engine) as session:
        if session.scalar(sa.select(sa.func.count()).select_from(Package)):
            print(ALREADY_THERE)
            return
        packages = [
            Package(name=name, summary=f"{name}, round 0", releases=[Release(version="1.0")])
            for name in NAMES
        ]
        leftpad = Package(name="leftpad", summary="Pads strings on the left")
        session.add_all([*packages, leftpad])
        session.commit()
        for round_ in range(1, ROUNDS):
            for package in packages:
                package.summary = f"{package.name}, round {round_}"
            if round_ == DELETE_ROUND:
                session.delete(leftpad)
            session.commit()

        ids = session.scalars(sa.select(transaction.c.id).order_by(transaction.c.id)).all()
        now = utc_now()
        for round_, transaction_id in enumerate(ids):
            days_ago = 5 + DAYS_APART * (ROUNDS - 1 - round_)
            session.execute(
                sa.update(transaction)
                .where(transaction.c.id == transaction_id)
                .values(issued_at=now - timedelta(days=days_ago))
            )
        session.commit()
    print(f"{len(NAMES)} packages changed in {ROUNDS} monthly rounds; leftpad deleted")


if __name__ == "__main__":
    main()
