"""``./scripts/workshop``: set the exercise branches up, check an exercise.

Thin: each command calls one function of the workshop package and prints its result. A
:class:`~workshop.messages.WorkshopError` is a click exception: one line,
``error: <message>``, and its exit code.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from workshop import messages
from workshop.branches import EXERCISES, Git
from workshop.branches import setup as setup_branches
from workshop.checks import check as check_exercise


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """The Vestige workshop: four exercises, each on its own branch.

    Instructors: ./scripts/workshop walkthrough plays every exercise as a learner would
    (the workshop's tests, on SQLite and PostgreSQL).

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
    here = Path.cwd().resolve()
    root = Git(here).root
    report = check_exercise(number, root)
    click.echo(messages.CHECK_TITLE.format(number=number, title=report.exercise.title))
    for index, step in enumerate(report.steps, start=1):
        if step.done:
            click.echo(messages.STEP_OK.format(index=index, step=step.name))
        else:
            click.echo(messages.STEP_TODO.format(index=index, step=step.name, hint=step.hint))
    if not report.done:
        # the command as the learner can type it from here (``../`` from exercise/)
        command = os.path.relpath(root.resolve() / "scripts" / "workshop", here)
        if not command.startswith((".", "/")):
            command = f"./{command}"
        passed = sum(step.done for step in report.steps)
        click.echo(
            messages.CHECK_NOT_DONE.format(
                passed=passed, total=report.total, command=command, number=number
            )
        )
        raise SystemExit(1)
    click.echo(messages.CHECK_DONE.format(number=number))
    last = number == EXERCISES[-1].number
    click.echo(messages.CHECK_LAST if last else messages.CHECK_NEXT.format(next=number + 1))


if __name__ == "__main__":
    main(prog_name="scripts/workshop")
