"""Create, update and delete, and let Continuum write the history.

python crud.py
"""

from __future__ import annotations

import sqlalchemy as sa
from db import START_OVER, engine
from sqlalchemy.orm import Session

from models import Package, Release

ALREADY_THERE = "flask is in the database already; to start over: " + START_OVER


def main() -> None:
    with Session(engine) as session:
        if session.scalar(sa.select(Package).where(Package.name == "flask")):
            print(ALREADY_THERE)
            return
        flask = Package(
            name="flask", summary="A micro framework", releases=[Release(version="3.0.0")]
        )
        session.add(flask)
        session.commit()  # an insert: operation_type 0

        flask.summary = "The Python micro framework for building web applications"
        flask.releases.append(Release(version="3.0.3"))
        session.commit()  # an update: operation_type 1

        leftpad = Package(name="leftpad", summary="Pads strings on the left")
        session.add(leftpad)
        session.commit()
        session.delete(leftpad)
        session.commit()  # a delete: operation_type 2
        print("flask added and changed; leftpad added and deleted")


if __name__ == "__main__":
    main()
