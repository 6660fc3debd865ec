"""Every sentence the workshop tool prints, in one place (the tests import them), and
the error that carries one to the command line.

Hints say what is missing and the command that fixes it; ``{}`` fields are filled in
with ``str.format``.
"""

from __future__ import annotations

from typing import IO, Any

import click


class WorkshopError(click.ClickException):
    """Setup or check refused to go on; the message says why and what to do.

    ``./scripts/workshop`` prints it as one line, ``error: <message>``, and exits with
    :attr:`exit_code`.
    """

    exit_code = 1

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", file=file, err=True)


class WorkshopUsageError(WorkshopError):
    """The command was given something it cannot use (an unknown exercise, no git)."""

    exit_code = 2


# --- setup -------------------------------------------------------------------------
NOT_A_REPOSITORY = (
    "{path} is not a git repository: run ./scripts/workshop from your clone of Vestige"
)
DIRTY_TREE = (
    "your working tree has uncommitted changes: commit them (or git stash -u), "
    "then run ./scripts/workshop setup again"
)
NO_BASE = "there is no local branch {base}: git fetch origin {base}:{base}, then setup again"
NO_EXERCISES = "{base} holds no workshop/exercise-N folders: is this Vestige's repository?"
BRANCH_HAS_YOUR_COMMITS = (
    "branch {branch} holds commits that setup did not make: rename it "
    "(git branch -m {branch} my-{branch}) or delete it, then run setup again"
)
BRANCH_CHECKED_OUT = (
    "setup would move {branch}, which is checked out: git checkout {base}, then setup again"
)
SETUP_LINE = "  {branch:<11} {state:<9} {commit}  {subject}"
SETUP_DONE = "Ready: git checkout exercise-1 and open exercise/README.md."

# --- check -------------------------------------------------------------------------
NO_SUCH_EXERCISE = "there is no exercise {number}; the exercises are {first} to {last}"
CHECK_TITLE = "Exercise {number}: {title}"
STEP_OK = "  ok    {index}. {step}"
STEP_TODO = "  todo  {index}. {step}: {hint}"
CHECK_DONE = "Exercise {number} is done."
CHECK_NEXT = "Next: git checkout exercise-{next}"
CHECK_LAST = "That was the last exercise: well done."
CHECK_NOT_DONE = (
    "Not done yet ({passed} of {total} steps). Run {command} check {number} again "
    "once you have done it."
)

# --- hints shared by every exercise -----------------------------------------------
NO_WORKSPACE = (
    "there is no exercise/ folder: run ./scripts/workshop setup, "
    "then git checkout exercise-{number}"
)
OTHER_WORKSPACE = (
    "exercise/ holds exercise {found}: git checkout exercise-{number} (or check {found})"
)
BAD_URL = (
    "DATABASE_URL is not a database URL SQLAlchemy understands; expected e.g. "
    "postgresql+psycopg2://user:password@localhost:5432/workshop, or unset it for SQLite"
)
BAD_DRIVER = (
    "DATABASE_URL names the driver {driver}, which the workshop cannot use: expected e.g. "
    "postgresql+psycopg2://user:password@localhost:5432/workshop, or unset it for SQLite"
)
DATABASE_UNREACHABLE = (
    "cannot reach the database at {url}: {reason}; check DATABASE_URL "
    "(for PostgreSQL: docker compose up -d db)"
)

# --- exercise 1: ORM -----------------------------------------------------------------
NO_TABLES = "table {table} is missing: write create() in schema.py, then python schema.py create"
TABLE_MISSING = (
    "table {table} is missing: declare it in models.py, then "
    "python schema.py drop; python schema.py create"
)
NO_FOREIGN_KEY = (
    "{table} has no foreign key to {referred}: declare {table}.{column} with "
    'sa.ForeignKey("{referred}.id"), then python schema.py drop; python schema.py create'
)
NO_ROWS = (
    "{table} has no rows: did run.py call session.commit()? Without it the session "
    "throws its inserts away. Add at least {minimum} in run.py, commit, then python run.py"
)
TOO_FEW_ROWS = (
    "{table} has {count} row(s), at least {minimum} needed: add them in run.py, then python run.py"
)

# --- exercise 2: audit tables ----------------------------------------------------------
NO_VERSION_TABLE = (
    "{table} is missing: call make_versioned(user_cls=None) before the models, mark them "
    "__versioned__ = {{}}, call configure_mappers() after them, then "
    "python schema.py drop; python schema.py create"
)
NO_OPERATION = (
    "no {operation} recorded in the version tables: {fix}, then python crud.py "
    "(no commit, no history: did crud.py call session.commit()?)"
)
OPERATION_FIX = {
    "insert": "add a package in crud.py and commit",
    "update": "change a package's summary in crud.py and commit",
    "delete": "delete a package in crud.py and commit",
}
NO_REVERT = (
    "no reverted change found: in history.py call flask.versions[0].revert() and commit, "
    "then python history.py"
)

# --- exercise 3: migrations -------------------------------------------------------------
STALE_REVISION = (
    "the database is at revision {revision}, which migrations/versions does not hold "
    "(left by another exercise?): python db.py reset; {then}"
)
STALE_THEN = {3: "alembic upgrade head", 4: "alembic upgrade head; python make_history.py"}
NO_REVISION = (
    "no revision in migrations/versions: start from an empty database (python db.py reset), "
    'then alembic revision --autogenerate -m "initial DB"'
)
BAD_REVISIONS = "cannot read migrations/versions: {error}"
INITIAL_WITHOUT_HISTORY = (
    "the initial revision does not create {table}: was the database empty, and did "
    "configure_mappers() run? python db.py reset, delete the revision, autogenerate again"
)
NOT_MIGRATED = "the database has no alembic_version table: run alembic upgrade head"
NO_SECOND_REVISION = (
    "no revision adds last_updated: add last_updated to Package in models.py, then "
    'alembic revision --autogenerate -m "add last_updated"'
)
MANY_HEADS = (
    "migrations/versions has {count} heads ({heads}): keep one chain of revisions "
    "(delete the extra ones, or alembic merge heads)"
)
COLUMN_MISSING = "{tables} {verb} no last_updated column: did you run alembic upgrade head?"
VERSION_COLUMN_MISSING = (
    "package_version has no last_updated column, package has: the revision must add it "
    "to both; autogenerate does, when configure_mappers() has run"
)
NOT_AT_HEAD = "the database is at {current}, the head is {head}: run alembic upgrade head"

# --- exercise 4: retention --------------------------------------------------------------
NO_HISTORY_TABLES = (
    "package_version is missing: run alembic upgrade head, then python make_history.py"
)
NO_HISTORY = "package_version is empty: run python make_history.py"
NO_POLICY = (
    "no retention policy: add [tool.vestige.retention] with keep_days and keep_versions "
    "to pyproject.toml"
)
BAD_POLICY = "the retention policy in pyproject.toml cannot be read: {error}"
NOTHING_PRUNED = (
    "nothing pruned yet: vestige prune --dry-run shows what would go, then vestige prune "
    "--yes (if the dry run deletes nothing, tighten the policy)"
)
CURRENT_VERSION_LOST = (
    "{table} row {key} has {count} current version(s) instead of 1: retention must never "
    "delete a current version; this is a bug in vestige prune, please report it"
)
CHAIN_BROKEN = (
    "the history of {table} row {key} has a hole: a version ends at transaction {end}, "
    "the next starts at {next}; this is a bug in vestige prune, please report it"
)
TOO_FEW_KEPT = (
    "{table} row {key} kept {count} version(s) but keep_versions is {keep}: "
    "this is a bug in vestige prune, please report it"
)
