"""Insert a few records through a session.

python run.py
"""

from __future__ import annotations

import sqlalchemy as sa
from db import START_OVER, engine
from sqlalchemy.orm import Session

from models import Maintainer, Package, Release

ALREADY_THERE = "the packages are in the database already; to start over: " + START_OVER


def main() -> None:
    with Session(engine) as session:
        if session.scalar(sa.select(sa.func.count()).select_from(Package)):
            print(ALREADY_THERE)
            return
        ann = Maintainer(username="ann", email="ann@example.org")
        bob = Maintainer(username="bob", email="bob@example.org")
        session.add_all(
            [
                Package(
                    name="requests",
                    summary="HTTP for Humans",
                    maintainers=[ann],
                    releases=[Release(version="2.32.2"), Release(version="2.32.3")],
                ),
                Package(
                    name="attrs",
                    summary="Classes without boilerplate",
                    maintainers=[ann, bob],
                    releases=[Release(version="24.2.0")],
                ),
            ]
        )
        session.commit()
        for package in session.scalars(sa.select(Package).order_by(Package.name)):
            print(package.name, package.releases, package.maintainers)


if __name__ == "__main__":
    main()
