"""Sample data for the demo: a package edited by two maintainers over a few commits.

Run as ``python -m models.sample_data``: writes the data once (a second run finds it
and writes nothing) and prints the demo package's primary key, which
``./scripts/demo`` hands to ``vestige history``.
"""

from __future__ import annotations

import sys

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


def main() -> int:
    engine = sa.create_engine(database_url())
    try:
        with Session(engine) as session:
            present = session.scalar(sa.select(Package.id).where(Package.name == DEMO_PACKAGE))
            if present is not None:
                print(f"{DEMO_PACKAGE} is already there: nothing written", file=sys.stderr)
            print(write_sample_data(session))
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
