"""Create, update and delete, and let Continuum write the history (README.md, step 3).

python crud.py
"""

from __future__ import annotations

from db import engine
from sqlalchemy.orm import Session

import models  # noqa: F401  (yours to use: models.Package, ...)


def main() -> None:
    with Session(engine) as session:
        # Your part, one commit each: add a package "flask"; change its summary;
        # add a package "leftpad" and then delete it.
        session.commit()


if __name__ == "__main__":
    main()
