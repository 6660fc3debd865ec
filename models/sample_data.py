"""Sample data for the demo: a package edited by two maintainers over a few commits.

Run as ``python -m models.sample_data``: writes the data once (a second run finds it
and writes nothing) and prints the demo package's primary key, which
``./scripts/demo`` hands to ``vestige history``.

``python -m models.sample_data --backdate-days 730`` makes a database whose history
spans two years, for the retention and archive walk-through (docs/archive.md): after the
sample data it writes a monthly edit of the package and its first release for the whole
span, then spreads every transaction evenly over the last 730 days, oldest first.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from models import License, Maintainer, Package, Release
from vestige.config import database_url
from vestige.versioning import actor

DEMO_PACKAGE = "httpkit"


def write_sample_data(session: Session) -> int:
    """Write the demo's history, one commit per edit, and return the package's id."""
    existing = session.scalar(sa.select(Package).where(Package.name == DEMO_PACKAGE))
    if existing is not None:
        return existing.id

    mit = License(spdx_id="MIT", name="MIT License", osi_approved=True)
    apache = License(spdx_id="Apache-2.0", name="Apache License 2.0", osi_approved=True)
    alice = Maintainer(username="alice", email="alice@example.org", full_name="Alice Liddell")
    bob = Maintainer(username="bob", email="bob@example.org")
    session.add_all([mit, apache, alice, bob])
    session.commit()

    with actor(user_id=alice.id, remote_addr="192.0.2.10"):
        package = Package(name=DEMO_PACKAGE, summary="HTTP client", license=mit)
        package.maintainers.append(alice)
        session.add(package)
        session.commit()
    with actor(user_id=bob.id, remote_addr="198.51.100.7"):
        package.summary = "A small HTTP client"
        package.homepage = "https://httpkit.example.org"
        package.maintainers.append(bob)
        session.add(Release(package=package, version="1.0.0", requires_python=">=3.10"))
        session.commit()
    with actor(user_id=alice.id, remote_addr="192.0.2.10"):
        package.license = apache
        session.add(Release(package=package, version="1.1.0", requires_python=">=3.11"))
        session.commit()
    with actor(user_id=bob.id, remote_addr="198.51.100.7"):
        package.summary = "A small, typed HTTP client"
        package.releases[0].yanked = True
        session.commit()
    return package.id


def write_backdated_history(session: Session, package_id: int, days: int) -> int:
    """Edit the package and its first release once a month over ``days`` days, then date
    every transaction evenly over the last ``days`` days, in id order; return the edits."""
    package = session.get_one(Package, package_id)
    maintainers = list(session.scalars(sa.select(Maintainer).order_by(Maintainer.id)))
    edits = max(1, days // 30)
    for month in range(1, edits + 1):
        author = maintainers[month % len(maintainers)]
        with actor(user_id=author.id, remote_addr="192.0.2.10"):
            package.summary = f"A small, typed HTTP client (edition {month})"
            if package.releases:
                package.releases[0].requires_python = f">=3.{10 + month % 4}"
            session.commit()
    transaction = sa.table("transaction", sa.column("id"), sa.column("issued_at"))
    ids = list(session.scalars(sa.select(transaction.c.id).order_by(transaction.c.id)))
    start = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=days)
    step = timedelta(days=days) / max(1, len(ids) - 1)
    for index, tx_id in enumerate(ids):
        session.execute(
            sa.update(transaction)
            .where(transaction.c.id == tx_id)
            .values(issued_at=start + step * index)
        )
    session.commit()
    return edits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.sample_data")
    parser.add_argument(
        "--backdate-days",
        type=int,
        metavar="DAYS",
        help="also write monthly edits and spread the history over the last DAYS days",
    )
    args = parser.parse_args(argv)
    engine = sa.create_engine(database_url())
    try:
        with Session(engine) as session:
            present = session.scalar(sa.select(Package.id).where(Package.name == DEMO_PACKAGE))
            if present is not None:
                print(f"{DEMO_PACKAGE} is already there: nothing written", file=sys.stderr)
            package_id = write_sample_data(session)
            if args.backdate_days and present is None:
                edits = write_backdated_history(session, package_id, args.backdate_days)
                print(
                    f"{edits} monthly edits; history spread over {args.backdate_days} days",
                    file=sys.stderr,
                )
            print(package_id)
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
