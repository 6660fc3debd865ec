"""Create or drop the tables the models declare.

python schema.py create
python schema.py drop
"""

from __future__ import annotations

import sys

from db import engine  # noqa: F401  (yours to use in create() and drop())

from models import Base


def create() -> None:
    """Create every table of ``Base.metadata`` in the database (README.md, step 2)."""
    raise NotImplementedError("write schema.create(): one call on Base.metadata")


def drop() -> None:
    """Drop every table of ``Base.metadata`` from the database (README.md, step 2)."""
    raise NotImplementedError("write schema.drop(): one call on Base.metadata")


COMMANDS = {"create": create, "drop": drop}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in COMMANDS:
        sys.exit("usage: python schema.py create|drop")
    COMMANDS[sys.argv[1]]()
    print(f"{sys.argv[1]}: {', '.join(sorted(Base.metadata.tables))}")
