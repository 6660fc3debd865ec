"""Read the history of a package and revert one change.

python history.py
"""

from __future__ import annotations

import sys

import sqlalchemy as sa
from db import engine
from sqlalchemy.orm import Session

from models import Package

NO_FLASK = "there is no package flask yet: run python crud.py first"

OPERATIONS = {0: "insert", 1: "update", 2: "delete"}


def main() -> None:
    with Session(engine) as session:
        flask = session.scalars(sa.select(Package).where(Package.name == "flask")).one_or_none()
        if flask is None:
            sys.exit(NO_FLASK)
        print(flask)
        for version in flask.versions:
            print(
                f"  transaction {version.transaction_id}: {OPERATIONS[version.operation_type]}"
                f" summary={version.summary!r}"
            )
            print(f"    changeset {version.changeset}")

        first = flask.versions[0]
        first.revert()
        session.commit()
        print(f"reverted to the first version: summary={flask.summary!r}")
        print(f"flask now has {flask.versions.count()} versions")


if __name__ == "__main__":
    main()
