"""Where the workshop's database lives: DATABASE_URL, else vestige.db in this folder.

Every script of the exercise imports ``engine`` from here. To start again from an
empty database (on SQLite or PostgreSQL alike)::

    python db.py reset
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import sqlalchemy as sa

HERE = Path(__file__).resolve().parent
URL = os.environ.get("DATABASE_URL") or f"sqlite:///{HERE / 'vestige.db'}"
engine = sa.create_engine(URL)


def reset() -> None:
    """Drop every table in the database, whatever created it."""
    metadata = sa.MetaData()
    metadata.reflect(engine)
    metadata.drop_all(engine)


if __name__ == "__main__":
    if sys.argv[1:] != ["reset"]:
        sys.exit("usage: python db.py reset")
    reset()
    print(f"dropped every table in {engine.url.render_as_string(hide_password=True)}")
