"""Where the workshop's database lives: DATABASE_URL, else vestige.db in this folder.

Every script of the exercise imports ``engine`` from here. To start the exercise over
from an empty database (on SQLite or PostgreSQL alike)::

    python db.py reset

It prints what to run next. Importing this module also turns the errors learners
usually meet (a name used before it is defined, a table not created yet, rows that are
there already, a database out of reach) into one line saying what to do;
WORKSHOP_TRACEBACK=1 shows the whole traceback instead.
"""

from __future__ import annotations

import os
import re
import sys
import traceback
from pathlib import Path
from types import TracebackType

import sqlalchemy as sa

HERE = Path(__file__).resolve().parent
URL = os.environ.get("DATABASE_URL") or f"sqlite:///{HERE / 'vestige.db'}"
engine = sa.create_engine(URL)

# What to run after python db.py reset, by exercise (the number in README.md's title).
AFTER_RESET = {
    1: "python schema.py create; python run.py",
    2: "python schema.py create; python run.py; python crud.py",
    3: 'alembic upgrade head, or (no revision yet) alembic revision --autogenerate -m "initial DB"',
    4: "alembic upgrade head; python make_history.py",
}
RESET_DONE = "dropped every table in {url}"
NEXT = "next: {commands}"
START_OVER = "python db.py reset (it says what to run next)"

NOT_DEFINED = (
    "{where}: {error}: define or import it above the line that uses it "
    "(Python runs a file from top to bottom)"
)
NO_VERSION_TABLES = (
    "table {table} does not exist: the version tables are missing: call "
    "configure_mappers() after the last model in models.py, then {rebuild}"
)
NO_TABLE = "table {table} does not exist: the tables are not created yet: {create}"
STALE_REVISION = (
    "the database is at revision {revision}, which migrations/versions does not hold "
    "(left by another exercise?); to start over: " + START_OVER
)
DUPLICATE_ROWS = (
    "those rows are in the database already (a script run twice?); to start over: " + START_OVER
)
UNREACHABLE = (
    "cannot reach the database at {url}: {error}; check DATABASE_URL "
    "(for PostgreSQL: docker compose up -d db)"
)
REBUILD_SCHEMA = "python schema.py drop; python schema.py create; python run.py"
REBUILD_MIGRATED = "python db.py reset; alembic upgrade head"
CREATE_SCHEMA = "python schema.py create"
CREATE_MIGRATED = "alembic upgrade head"

_MISSING_TABLE = re.compile(r'no such table: (\S+)|relation "([^"]+)" does not exist')


def exercise_number() -> int | None:
    """The exercise this folder holds, from the title of its README.md."""
    readme = HERE / "README.md"
    if not readme.is_file():
        return None
    title = readme.read_text(encoding="utf-8").split("\n", 1)[0]
    found = title.removeprefix("# Exercise ").split(":", 1)[0].strip()
    return int(found) if found.isdigit() else None


def reset() -> None:
    """Drop every table in the database, whatever created it."""
    metadata = sa.MetaData()
    metadata.reflect(engine)
    metadata.drop_all(engine)


def hint(error: BaseException, where: str = "") -> str | None:
    """One line saying what went wrong and what to run, for the usual errors; else None."""
    first = (str(getattr(error, "orig", None) or error).strip().splitlines() or [""])[0]
    migrated = (HERE / "alembic.ini").is_file()
    if isinstance(error, NameError):
        return NOT_DEFINED.format(where=where, error=first)
    if isinstance(error, sa.exc.IntegrityError) and (
        "UNIQUE" in first or "unique constraint" in first
    ):
        return DUPLICATE_ROWS
    if isinstance(error, sa.exc.DBAPIError) and error.statement is None:  # while connecting
        url = engine.url.render_as_string(hide_password=True)
        return UNREACHABLE.format(url=url, error=first)
    if isinstance(error, sa.exc.DBAPIError) and (found := _MISSING_TABLE.search(first)):
        table = (found.group(1) or found.group(2)).rsplit(".", 1)[-1]
        if table == "transaction" or table.endswith("_version"):
            rebuild = REBUILD_MIGRATED if migrated else REBUILD_SCHEMA
            return NO_VERSION_TABLES.format(table=table, rebuild=rebuild)
        return NO_TABLE.format(table=table, create=CREATE_MIGRATED if migrated else CREATE_SCHEMA)
    return None


def _explain(kind: type[BaseException], error: BaseException, tb: TracebackType | None) -> None:
    frames = [frame for frame in traceback.extract_tb(tb) if frame.filename.startswith(str(HERE))]
    where = f"{Path(frames[-1].filename).name} line {frames[-1].lineno}" if frames else "here"
    line = None if os.environ.get("WORKSHOP_TRACEBACK") else hint(error, where)
    if line is None:
        sys.__excepthook__(kind, error, tb)
    else:
        print(f"error: {line}", file=sys.stderr)


sys.excepthook = _explain

if __name__ == "__main__":
    if sys.argv[1:] != ["reset"]:
        sys.exit("usage: python db.py reset")
    reset()
    print(RESET_DONE.format(url=engine.url.render_as_string(hide_password=True)))
    number = exercise_number()
    if number in AFTER_RESET:
        print(NEXT.format(commands=AFTER_RESET[number]))
