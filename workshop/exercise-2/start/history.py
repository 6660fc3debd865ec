"""Read the history of a package and revert one change (README.md, step 4).

python history.py
"""

from __future__ import annotations

import sys

import sqlalchemy as sa
from db import engine
from sqlalchemy.orm import Session

from models import Package

NO_FLASK = "there is no package flask yet: run python crud.py first"


def main() -> None:
    with Session(engine) as session:
        flask = session.scalars(sa.select(Package).where(Package.name == "flask")).one_or_none()
        if flask is None:
            sys.exit(NO_FLASK)
        print(flask)
        # Your part: print each of flask.versions (transaction_id, operation_type,
        # summary) and its changeset; then revert flask to its first version and commit.


if __name__ == "__main__":
    main()
