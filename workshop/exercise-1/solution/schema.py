"""Create or drop the tables the models declare.

python schema.py create
python schema.py drop
"""

from __future__ import annotations

import sys

from db import engine

from models import Base


def create() -> None:
    """Create every table of ``Base.metadata`` in the database."""
    Base.metadata.create_all(engine)


def drop() -> None:
    """Drop every table of ``Base.metadata`` from the database."""
    Base.metadata.drop_all(engine)


COMMANDS = {"create": create, "drop": drop}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in COMMANDS:
        sys.exit("usage: python schema.py create|drop")
    COMMANDS[sys.argv[1]]()
    print(f"{sys.argv[1]}: {', '.join(sorted(Base.metadata.tables))}")
