"""``check N``: is exercise N done? Outcomes in the database and files, step by step.

Every exercise's check is a list of steps, each a name and a function that returns
``None`` when the step is done or a hint (what is missing, and the command that fixes
it). Steps run in order and stop at the first one not done, since later steps build on
earlier ones. The learner's code is never run: only what it left behind is looked at,
read-only: exercise 1 leaves tables, foreign keys and rows; exercise 2 version tables
holding an insert, an update, a delete and a revert; exercise 3 two revisions and a
database at head with ``last_updated`` in ``package`` and ``package_version``; exercise 4
a policy and a pruned history that still holds every current version.

The database is the exercises' own: ``DATABASE_URL``, else ``exercise/vestige.db``. A
SQLite file that does not exist is an empty database here: connecting would create it.

About 500 lines in one module on purpose: the four exercises' steps (two thirds of it)
and the read-only context they share are read together when a check's hint changes.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import groupby, pairwise
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.script import ScriptDirectory

from vestige.errors import first_line
from workshop import messages
from workshop.branches import EXERCISES, WORKSPACE, Exercise, exercise
from workshop.messages import WorkshopUsageError

SQLITE_FILE = "vestige.db"


def workshop_url(workspace: Path, environ: Mapping[str, str] | None = None) -> str:
    """The database URL the exercise's scripts use (see ``exercise/db.py``)."""
    env = os.environ if environ is None else environ
    return env.get("DATABASE_URL") or f"sqlite:///{workspace / SQLITE_FILE}"


class Context:
    """What a step looks at: the learner's workspace, and read-only questions about the
    database (its tables, columns and rows)."""

    def __init__(self, number: int, workspace: Path, engine: sa.Engine) -> None:
        self.number = number
        self.workspace = workspace
        self.engine = engine
        url = engine.url
        self.safe_url = url.render_as_string(hide_password=True)
        database = url.database or ""
        self._missing = url.get_backend_name() == "sqlite" and (
            database not in ("", ":memory:") and not Path(database).exists()
        )

    def probe(self) -> str | None:
        """``None`` when the database answers, else the reason, on one line."""
        if self._missing:
            return None
        try:
            with self.engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
        except sa.exc.DBAPIError as exc:
            return first_line(exc)
        return None

    @cached_property
    def inspector(self) -> sa.Inspector:
        return sa.inspect(self.engine)

    @cached_property
    def tables(self) -> set[str]:
        """The names of the tables in the default schema."""
        return set() if self._missing else set(self.inspector.get_table_names())

    def columns(self, table: str) -> set[str]:
        return {column["name"] for column in self.inspector.get_columns(table)}

    def referred_tables(self, table: str) -> dict[str, str]:
        """Referred table -> the local column pointing at it, per foreign key."""
        return {
            key["referred_table"]: key["constrained_columns"][0]
            for key in self.inspector.get_foreign_keys(table)
        }

    def count(self, table: str, where: sa.ColumnElement[bool] | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(sa.table(table))
        if where is not None:
            query = query.where(where)
        with self.engine.connect() as connection:
            return int(connection.scalar(query) or 0)

    def rows(self, table: str, order_by: Sequence[str]) -> list[dict[str, Any]]:
        """Every row of ``table`` as a dict, in ``order_by`` order."""
        reflected = sa.Table(table, sa.MetaData(), autoload_with=self.engine)
        query = sa.select(reflected).order_by(*(reflected.c[name] for name in order_by))
        with self.engine.connect() as connection:
            return [dict(row) for row in connection.execute(query).mappings()]

    @cached_property
    def scripts(self) -> ScriptDirectory:
        """The workspace's Alembic revisions (exercise 3 on)."""
        return ScriptDirectory(str(self.workspace / "migrations"))


StepFunction = Callable[[Context], str | None]


@dataclass(frozen=True)
class Step:
    """One step of a check, as it turned out.

    Attributes:
        name: What the step checks, e.g. "the version tables exist".
        hint: ``None`` when done; else what is missing and how to fix it.
    """

    name: str
    hint: str | None = None

    @property
    def done(self) -> bool:
        return self.hint is None


@dataclass(frozen=True)
class Report:
    """The outcome of ``check N``.

    Attributes:
        exercise: The exercise checked.
        steps: The steps that ran: every done one, then the first not done, if any.
        total: How many steps the exercise has.
    """

    exercise: Exercise
    steps: tuple[Step, ...]
    total: int

    @property
    def done(self) -> bool:
        return len(self.steps) == self.total and all(step.done for step in self.steps)

    @property
    def missing(self) -> Step | None:
        """The first step not done, or ``None``."""
        return next((step for step in self.steps if not step.done), None)


def _workspace_step(context: Context) -> str | None:
    readme = context.workspace / "README.md"
    if not readme.is_file():
        return messages.NO_WORKSPACE.format(number=context.number)
    title = readme.read_text(encoding="utf-8").split("\n", 1)[0]
    found = title.removeprefix("# Exercise ").split(":", 1)[0].strip()
    if found != str(context.number):
        return messages.OTHER_WORKSPACE.format(found=found, number=context.number)
    return None


def _database_step(context: Context) -> str | None:
    reason = context.probe()
    if reason is None:
        return None
    return messages.DATABASE_UNREACHABLE.format(url=context.safe_url, reason=reason)


COMMON_STEPS: Sequence[tuple[str, StepFunction]] = (
    ("exercise/ holds this exercise", _workspace_step),
    ("the database answers", _database_step),
)

INSERT, UPDATE, DELETE = 0, 1, 2
VERSION_BOOKKEEPING = frozenset({"transaction_id", "end_transaction_id", "operation_type"})

# --- exercise 1: ORM ---------------------------------------------------------------

ORM_TABLES = ("package", "release", "maintainer", "package_maintainer")
FOREIGN_KEYS = (
    ("release", "package", "package_id"),
    ("package_maintainer", "package", "package_id"),
    ("package_maintainer", "maintainer", "maintainer_id"),
)
MINIMUM_ROWS = {"package": 2, "release": 1, "maintainer": 1, "package_maintainer": 1}


def _orm_tables(context: Context) -> str | None:
    missing = [table for table in ORM_TABLES if table not in context.tables]
    if not missing:
        return None
    template = messages.NO_TABLES if "package" in missing else messages.TABLE_MISSING
    return template.format(table=missing[0])


def _foreign_keys(context: Context) -> str | None:
    for table, referred, column in FOREIGN_KEYS:
        if referred not in context.referred_tables(table):
            return messages.NO_FOREIGN_KEY.format(table=table, referred=referred, column=column)
    return None


def _rows(context: Context) -> str | None:
    for table, minimum in MINIMUM_ROWS.items():
        count = context.count(table)
        if count == 0:
            return messages.NO_ROWS.format(table=table, minimum=minimum)
        if count < minimum:
            return messages.TOO_FEW_ROWS.format(table=table, count=count, minimum=minimum)
    return None


# --- exercise 2: audit tables -------------------------------------------------------

VERSIONED = ("package", "release", "maintainer")
HISTORY_TABLES = (*(f"{table}_version" for table in VERSIONED), "transaction")


def _version_tables(context: Context) -> str | None:
    missing = [table for table in HISTORY_TABLES if table not in context.tables]
    return messages.NO_VERSION_TABLE.format(table=missing[0]) if missing else None


def _operation(name: str, operation_type: int) -> StepFunction:
    def step(context: Context) -> str | None:
        where = sa.column("operation_type") == operation_type
        if any(context.count(f"{table}_version", where) for table in VERSIONED):
            return None
        return messages.NO_OPERATION.format(operation=name, fix=messages.OPERATION_FIX[name])

    return step


def _chains(context: Context, table: str) -> dict[Any, list[dict[str, Any]]]:
    """Each record's versions in ``table``'s version table, oldest first, by id."""
    rows = context.rows(f"{table}_version", ["id", "transaction_id"])
    return {key: list(group) for key, group in groupby(rows, key=lambda row: row["id"])}


def _data(version: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(
        value
        for name, value in sorted(version.items())
        if name not in VERSION_BOOKKEEPING and not name.endswith("_mod")
    )


def _is_revert(chain: Sequence[Mapping[str, Any]]) -> bool:
    """An update that brings back the values of a version older than the one before it."""
    for index, version in enumerate(chain):
        if version["operation_type"] != UPDATE or index < 2:
            continue
        values = _data(version)
        if values != _data(chain[index - 1]) and any(
            values == _data(older) for older in chain[: index - 1]
        ):
            return True
    return False


def _reverted(context: Context) -> str | None:
    for table in VERSIONED:
        if any(_is_revert(chain) for chain in _chains(context, table).values()):
            return None
    return messages.NO_REVERT


# --- exercise 3: migrations -----------------------------------------------------------


def _known_revision(context: Context) -> str | None:
    if "alembic_version" not in context.tables:
        return None
    try:
        known = {script.revision for script in context.scripts.walk_revisions()}
    except Exception:  # unreadable revisions: the step that reads them says so
        return None
    rows = context.rows("alembic_version", ["version_num"])
    stale = [row["version_num"] for row in rows if row["version_num"] not in known]
    if not stale:
        return None
    return messages.STALE_REVISION.format(
        revision=", ".join(stale), then=messages.STALE_THEN[context.number]
    )


def _revision_sources(context: Context) -> tuple[list[str], list[str]]:
    """The source of the base revisions and of the others."""
    bases: list[str] = []
    others: list[str] = []
    for script in context.scripts.walk_revisions():
        source = Path(script.path).read_text(encoding="utf-8")
        (bases if script.down_revision is None else others).append(source)
    return bases, others


def _initial_revision(context: Context) -> str | None:
    try:
        bases, _ = _revision_sources(context)
    except Exception as exc:  # a learner's revision file can fail in any way
        return messages.BAD_REVISIONS.format(error=str(exc).strip().splitlines()[0])
    return None if bases else messages.NO_REVISION


def _initial_has_history(context: Context) -> str | None:
    bases, _ = _revision_sources(context)
    if any("package_version" in source for source in bases):
        return None
    return messages.INITIAL_WITHOUT_HISTORY.format(table="package_version")


def _migrated(context: Context) -> str | None:
    if "alembic_version" in context.tables and context.count("alembic_version"):
        return None
    return messages.NOT_MIGRATED


def _second_revision(context: Context) -> str | None:
    _, others = _revision_sources(context)
    return (
        None if any("last_updated" in source for source in others) else messages.NO_SECOND_REVISION
    )


def _one_head(context: Context) -> str | None:
    heads = context.scripts.get_heads()
    if len(heads) == 1:
        return None
    return messages.MANY_HEADS.format(count=len(heads), heads=", ".join(sorted(heads)))


def _last_updated(context: Context) -> str | None:
    lacking = [
        table
        for table in ("package", "package_version")
        if "last_updated" not in context.columns(table)
    ]
    if not lacking:
        return None
    if lacking == ["package_version"]:
        return messages.VERSION_COLUMN_MISSING
    verb = "has" if len(lacking) == 1 else "have"
    return messages.COLUMN_MISSING.format(tables=" and ".join(lacking), verb=verb)


def _at_head(context: Context) -> str | None:
    head = context.scripts.get_current_head()
    current = [row["version_num"] for row in context.rows("alembic_version", ["version_num"])]
    if current == [head]:
        return None
    return messages.NOT_AT_HEAD.format(current=", ".join(current) or "no revision", head=head)


# --- exercise 4: retention --------------------------------------------------------------

POLICY_KEYS = frozenset({"keep_days", "keep_versions", "deleted_keep_days"})


def _history(context: Context) -> str | None:
    if "package_version" not in context.tables:
        return messages.NO_HISTORY_TABLES
    return None if context.count("package_version") else messages.NO_HISTORY


def _read_policy(context: Context) -> Mapping[str, Any]:
    """``[tool.vestige.retention]`` of the workspace's pyproject.toml, or ``{}``."""
    path = context.workspace / "pyproject.toml"
    if not path.is_file():
        return {}
    with path.open("rb") as handle:
        policy = tomllib.load(handle).get("tool", {}).get("vestige", {}).get("retention", {})
    return policy if isinstance(policy, dict) else {}


def _policy(context: Context) -> str | None:
    try:
        policy = _read_policy(context)
    except tomllib.TOMLDecodeError as exc:
        return messages.BAD_POLICY.format(error=exc)
    return None if POLICY_KEYS & set(policy) else messages.NO_POLICY


def _pruned(context: Context) -> str | None:
    chains = _chains(context, "package").values()
    if any(chain[0]["operation_type"] != INSERT for chain in chains):
        return None
    return messages.NOTHING_PRUNED


def _history_whole(context: Context) -> str | None:
    for table in ("package", "release"):
        live = {row["id"] for row in context.rows(table, ["id"])}
        for key, chain in _chains(context, table).items():
            for older, newer in pairwise(chain):
                if older["end_transaction_id"] != newer["transaction_id"]:
                    return messages.CHAIN_BROKEN.format(
                        table=table,
                        key=key,
                        end=older["end_transaction_id"],
                        next=newer["transaction_id"],
                    )
        chains = _chains(context, table)
        for key in sorted(live):
            current = [v for v in chains.get(key, []) if v["end_transaction_id"] is None]
            if len(current) != 1:
                return messages.CURRENT_VERSION_LOST.format(
                    table=table, key=key, count=len(current)
                )
    return None


def _kept_enough(context: Context) -> str | None:
    policy = _read_policy(context)
    models = policy.get("models")
    override = models.get("Package") if isinstance(models, dict) else None
    keep = policy.get("keep_versions")
    if isinstance(override, dict):
        keep = override.get("keep_versions", keep)
    if not isinstance(keep, int):
        return None
    for key, chain in _chains(context, "package").items():
        pruned = chain[0]["operation_type"] != INSERT
        if pruned and len(chain) < keep:
            return messages.TOO_FEW_KEPT.format(
                table="package", key=key, count=len(chain), keep=keep
            )
    return None


STEPS: Mapping[int, Sequence[tuple[str, StepFunction]]] = {
    1: (
        ("the tables exist", _orm_tables),
        ("the relationships are foreign keys", _foreign_keys),
        ("a few records were inserted", _rows),
    ),
    2: (
        ("the version tables exist", _version_tables),
        ("an insert was recorded", _operation("insert", INSERT)),
        ("an update was recorded", _operation("update", UPDATE)),
        ("a delete was recorded", _operation("delete", DELETE)),
        ("a change was reverted", _reverted),
    ),
    3: (
        ("the database is at a revision migrations/versions holds", _known_revision),
        ("an initial revision", _initial_revision),
        ("the initial revision creates the version tables", _initial_has_history),
        ("the database is migrated", _migrated),
        ("a second revision adds last_updated", _second_revision),
        ("one chain of revisions", _one_head),
        ("last_updated in package and package_version", _last_updated),
        ("the database is at head", _at_head),
    ),
    4: (
        ("the database is at a revision migrations/versions holds", _known_revision),
        ("there is history to prune", _history),
        ("a retention policy", _policy),
        ("the history was pruned", _pruned),
        ("every current version and chain is whole", _history_whole),
        ("keep_versions was honoured", _kept_enough),
    ),
}


def check(number: int, root: Path, environ: Mapping[str, str] | None = None) -> Report:
    """Check exercise ``number`` in the repository at ``root``.

    Args:
        number: The exercise.
        root: The repository root; the workspace is ``root / "exercise"``.
        environ: Where ``DATABASE_URL`` is read (default: ``os.environ``).

    Returns:
        Every step done, then the first not done (if any), and how many there are.

    Raises:
        WorkshopUsageError: There is no exercise ``number``, or DATABASE_URL is no URL or
            names a driver the exercises cannot use.
    """
    try:
        checked = exercise(number)
    except KeyError:
        raise WorkshopUsageError(
            messages.NO_SUCH_EXERCISE.format(
                number=number, first=EXERCISES[0].number, last=EXERCISES[-1].number
            )
        ) from None
    workspace = root / WORKSPACE
    plan = [*COMMON_STEPS, *STEPS[number]]
    try:
        url = sa.make_url(workshop_url(workspace, environ))
    except sa.exc.ArgumentError:
        raise WorkshopUsageError(messages.BAD_URL) from None
    try:
        # the exercises' scripts are synchronous: an async driver fails there too
        usable = not url.get_dialect().is_async
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool) if usable else None
    except (sa.exc.NoSuchModuleError, ImportError):  # no such dialect, or its driver
        engine = None
    if engine is None:
        raise WorkshopUsageError(messages.BAD_DRIVER.format(driver=url.drivername))
    done: list[Step] = []
    context = Context(number, workspace, engine)
    try:
        for name, function in plan:
            step = Step(name, function(context))
            done.append(step)
            if not step.done:
                break
    finally:
        context.engine.dispose()
    return Report(checked, tuple(done), len(plan))
