"""Insert a few records through a session (README.md, step 3).

python run.py
"""

from __future__ import annotations

import sqlalchemy as sa
from db import START_OVER, engine
from sqlalchemy.orm import Session

import models  # yours to use: models.Package, ...

ALREADY_THERE = "the packages are in the database already; to start over: " + START_OVER


def main() -> None:
    with Session(engine) as session:
        # Run twice, the inserts would break the unique names: say so instead.
        if session.scalar(sa.select(sa.func.count()).select_from(models.Package)):
            print(ALREADY_THERE)
            return
        # Your part: at least two packages, a release, and a maintainer who keeps a
        # package, added to the session; then commit.
        session.commit()


if __name__ == "__main__":
    main()
