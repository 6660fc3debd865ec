"""``check N``: is exercise N done? Outcomes in the database and files, step by step.

Every exercise's check is a list of steps, each a name and a function that returns
``None`` when the step is done or a hint (what is missing, and the command that fixes
it). Steps run in order and stop at the first one not done, since later steps build on
earlier ones. The learner's code is never run: only what it left behind is looked at.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import sqlalchemy as sa
from alembic.script import ScriptDirectory

from workshop import messages
from workshop.database import Database, open_database, workshop_url
from workshop.errors import WorkshopUsageError
from workshop.exercises import EXERCISES, WORKSPACE, Exercise, exercise


class Context:
    """What a step looks at: the learner's workspace and database."""

    def __init__(self, number: int, workspace: Path, database: Database) -> None:
        self.number = number
        self.workspace = workspace
        self.db = database

    @cached_property
    def tables(self) -> set[str]:
        return self.db.tables()

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
    reason = context.db.probe()
    if reason is None:
        return None
    return messages.DATABASE_UNREACHABLE.format(url=context.db.safe_url, reason=reason)


COMMON_STEPS: Sequence[tuple[str, StepFunction]] = (
    ("exercise/ holds this exercise", _workspace_step),
    ("the database answers", _database_step),
)


def run_check(
    number: int,
    root: Path,
    steps: Mapping[int, Sequence[tuple[str, StepFunction]]],
    environ: Mapping[str, str] | None = None,
) -> Report:
    """Check exercise ``number`` in the repository at ``root``.

    Args:
        number: The exercise.
        root: The repository root; the workspace is ``root / "exercise"``.
        steps: Each exercise's own steps, run after the common ones.
        environ: Where ``DATABASE_URL`` is read (default: ``os.environ``).

    Raises:
        WorkshopUsageError: There is no exercise ``number``, or DATABASE_URL is no URL.
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
    plan = [*COMMON_STEPS, *steps[number]]
    done: list[Step] = []
    url = workshop_url(workspace, environ)
    try:
        sa.make_url(url)
    except sa.exc.ArgumentError:
        raise WorkshopUsageError(messages.BAD_URL) from None
    with open_database(url) as database:
        context = Context(number, workspace, database)
        for name, function in plan:
            step = Step(name, function(context))
            done.append(step)
            if not step.done:
                break
    return Report(checked, tuple(done), len(plan))
