"""Create, update and delete, and let Continuum write the history (README.md, step 3).

python crud.py
"""

from __future__ import annotations

import sqlalchemy as sa
from db import START_OVER, engine
from sqlalchemy.orm import Session

import models  # yours to use: models.Package, ...

ALREADY_THERE = "flask is in the database already; to start over: " + START_OVER


def main() -> None:
    with Session(engine) as session:
        # Run twice, the insert would break the unique name: say so instead.
        if session.scalar(sa.select(models.Package).where(models.Package.name == "flask")):
            print(ALREADY_THERE)
            return
        # Your part, one commit each: add a package "flask"; change its summary;
        # add a package "leftpad" and then delete it.
        session.commit()


if __name__ == "__main__":
    main()
