"""``./scripts/workshop``: set the exercise branches up, check an exercise, play them all.

Thin: each command calls one function of the workshop package and prints its result.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import click

from vestige.cli.support import ErrorTranslatingGroup
from workshop import messages
from workshop.branches import setup as setup_branches
from workshop.exercise_checks import check as check_exercise
from workshop.exercises import EXERCISES
from workshop.git import Git
from workshop.walkthrough import (
    PRUNE_MISSING,
    Check,
    Command,
    StepFailed,
    learner_environment,
    play,
    prune_available,
    snapshot,
)


@click.group(cls=ErrorTranslatingGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """The Vestige workshop: four exercises, each on its own branch.

    \b
    Example:
        ./scripts/workshop setup
        git checkout exercise-1
        ./scripts/workshop check 1
    """


@main.command()
@click.option("--base", default="main", show_default=True, help="Branch to build from.")
def setup(base: str) -> None:
    """Create the branches exercise-1..4 and solution-1..4 from main.

    Safe to run again: the branches come out identical. Refuses on a dirty working
    tree; never changes main, the checked-out files, or any remote.

    \b
    Example:
        ./scripts/workshop setup && git checkout exercise-1
    """
    for result in setup_branches(Path.cwd(), base):
        click.echo(
            messages.SETUP_LINE.format(
                branch=result.branch,
                state=result.state,
                commit=result.commit[:10],
                subject=result.subject,
            )
        )
    click.echo(messages.SETUP_DONE)


@main.command()
@click.argument("number", metavar="N", type=int)
def check(number: int) -> None:
    """Tell whether exercise N is done; if not, the step missing and a hint.

    Exit code 0: done; 1: not yet; 2: there is no exercise N. Looks at exercise/ and at
    the database (DATABASE_URL, else exercise/vestige.db), never at your code.

    \b
    Example:
        ./scripts/workshop check 2
    """
    report = check_exercise(number, Git(Path.cwd()).root)
    click.echo(messages.CHECK_TITLE.format(number=number, title=report.exercise.title))
    for index, step in enumerate(report.steps, start=1):
        if step.done:
            click.echo(messages.STEP_OK.format(index=index, step=step.name))
        else:
            click.echo(messages.STEP_TODO.format(index=index, step=step.name, hint=step.hint))
    if not report.done:
        passed = sum(step.done for step in report.steps)
        click.echo(
            messages.CHECK_NOT_DONE.format(
                passed=passed, total=report.total, command=_this_command(), number=number
            )
        )
        raise SystemExit(1)
    click.echo(messages.CHECK_DONE.format(number=number))
    last = number == EXERCISES[-1].number
    click.echo(messages.CHECK_LAST if last else messages.CHECK_NEXT.format(next=number + 1))


def _this_command() -> str:
    """``scripts/workshop`` as the learner can type it from here (``../`` from exercise/)."""
    here = Path.cwd().resolve()
    path = os.path.relpath(Git(here).root.resolve() / "scripts" / "workshop", here)
    return path if path.startswith((".", "/")) else f"./{path}"


@main.command()
@click.option("--keep", is_flag=True, help="Keep the scratch clone and print where it is.")
def walkthrough(keep: bool) -> None:
    """Play every exercise as a learner would, in a scratch clone, and time it.

    The clone holds this working tree (uncommitted changes included). The database is
    DATABASE_URL's, else a SQLite file in the clone; its tables are dropped as the
    exercises ask.

    \b
    Example:
        DATABASE_URL=postgresql+psycopg2://postgres@localhost/ws ./scripts/workshop walkthrough
    """
    scratch = Path(tempfile.mkdtemp(prefix="vestige-workshop-"))
    root = snapshot(Git(Path.cwd()).root, scratch / "vestige")
    env = learner_environment()
    started = time.perf_counter()
    setup_branches(root)
    click.echo(f"setup: {time.perf_counter() - started:.1f} s")
    failures = 0
    for item in EXERCISES:
        begun = time.perf_counter()
        try:
            played = list(play(root, item.number, env))
        except StepFailed as exc:
            raise click.ClickException(str(exc)) from None
        for step in played:
            if not step.as_expected:
                failures += 1
                expected = getattr(step.step, "expected", None)
                click.echo(f"  {step.step}: said {step.hint!r}, expected {expected!r}")
        if not prune_available() and item.number == 4:
            click.echo(f"  stopped before vestige prune: {PRUNE_MISSING}")
        commands = sum(isinstance(step.step, Command) for step in played)
        checks = sum(isinstance(step.step, Check) for step in played)
        click.echo(
            f"exercise {item.number}: {commands} commands, "
            f"{checks} checks, {time.perf_counter() - begun:.1f} s"
        )
    click.echo(f"all exercises: {time.perf_counter() - started:.1f} s")
    if keep:
        click.echo(f"the clone is at {root}")
    else:
        shutil.rmtree(scratch)
    if failures:
        raise SystemExit(1)


if __name__ == "__main__":
    main(prog_name="scripts/workshop")
