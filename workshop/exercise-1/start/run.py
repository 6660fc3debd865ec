"""Insert a few records through a session (README.md, step 3).

python run.py
"""

from __future__ import annotations

from db import engine
from sqlalchemy.orm import Session

import models  # noqa: F401  (yours to use: models.Package, ...)


def main() -> None:
    with Session(engine) as session:
        # Your part: at least two packages, a release, and a maintainer who keeps a
        # package, added to the session; then commit.
        session.commit()


if __name__ == "__main__":
    main()
