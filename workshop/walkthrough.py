"""A learner's run through every exercise, scripted: the commands each README asks for,
with ``check N`` at the points where a learner would run it and the hint it must give.
(The revisions of ``solution-3`` are played by exercise 4, which starts from them.)

``./scripts/workshop walkthrough`` plays it in a scratch clone and times it; the tests
play each exercise on SQLite and PostgreSQL. Writing the code is played by checking
out the solution (the whole ``solution-N`` branch, or one file of it).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from workshop import messages
from workshop.exercise_checks import check
from workshop.exercises import WORKSPACE


@dataclass(frozen=True)
class Command:
    """A command the learner types, in ``exercise/`` or (``at_root``) the repository root."""

    argv: tuple[str, ...]
    at_root: bool = False

    def __str__(self) -> str:
        where = "" if self.at_root else f"{WORKSPACE}$ "
        return where + " ".join(self.argv)


@dataclass(frozen=True)
class Check:
    """``./scripts/workshop check N``, and the hint it must give (``None``: done)."""

    expected: str | None


@dataclass(frozen=True)
class Played:
    """One played step: what it was, how long it took, and for a check what it said."""

    step: Command | Check
    seconds: float
    hint: str | None = None

    @property
    def as_expected(self) -> bool:
        return not isinstance(self.step, Check) or self.step.expected == self.hint


class StepFailed(Exception):
    """A command of the walkthrough exited non-zero."""


def run(*argv: str) -> Command:
    return Command(argv)


def git(*argv: str) -> Command:
    return Command(("git", *argv), at_root=True)


SCRIPT: Mapping[int, tuple[Command | Check, ...]] = {
    1: (
        git("checkout", "-q", "exercise-1"),
        Check(messages.NO_TABLES.format(table="package")),
        git("checkout", "-q", "solution-1"),
        run("python", "schema.py", "create"),
        Check(messages.TOO_FEW_ROWS.format(table="package", count=0, minimum=2)),
        run("python", "schema.py", "drop"),
        run("python", "schema.py", "create"),
        run("python", "run.py"),
        Check(None),
    ),
    2: (
        git("checkout", "-q", "exercise-2"),
        Check(messages.NO_VERSION_TABLE.format(table="package_version")),
        git("checkout", "-q", "solution-2"),
        run("python", "schema.py", "drop"),
        run("python", "schema.py", "create"),
        run("python", "run.py"),
        run("python", "crud.py"),
        Check(messages.NO_REVERT),
        run("python", "history.py"),
        Check(None),
    ),
    3: (
        git("checkout", "-q", "exercise-3"),
        run("python", "db.py", "reset"),
        Check(messages.NO_REVISION),
        run("alembic", "revision", "--autogenerate", "-m", "initial DB"),
        run("alembic", "upgrade", "head"),
        Check(messages.NO_SECOND_REVISION),
        git("checkout", "solution-3", "--", f"{WORKSPACE}/models.py"),
        run("alembic", "revision", "--autogenerate", "-m", "add last_updated"),
        run("alembic", "upgrade", "head"),
        run("alembic", "downgrade", "-1"),
        Check(messages.COLUMN_MISSING.format(tables="package and package_version", verb="have")),
        run("alembic", "upgrade", "head"),
        Check(None),
        git("add", "-A", WORKSPACE),
        git("commit", "-q", "-m", "My exercise 3"),
    ),
    4: (
        git("checkout", "-q", "exercise-4"),
        run("python", "db.py", "reset"),
        Check(messages.NO_HISTORY_TABLES),
        run("alembic", "upgrade", "head"),
        run("python", "make_history.py"),
        Check(messages.NO_POLICY),
        git("checkout", "-q", "solution-4"),
        Check(messages.NOTHING_PRUNED),
        run("vestige", "prune", "--dry-run"),
        run("vestige", "prune", "--yes"),
        run("python", "report.py"),
        Check(None),
    ),
}


def learner_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment the commands run in: this Python's bin first on PATH, and a git
    identity for the learner's commit when none is set."""
    env = dict(os.environ if environ is None else environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    for variable, value in (
        ("GIT_AUTHOR_NAME", "Learner"),
        ("GIT_AUTHOR_EMAIL", "learner@example.invalid"),
        ("GIT_COMMITTER_NAME", "Learner"),
        ("GIT_COMMITTER_EMAIL", "learner@example.invalid"),
    ):
        env.setdefault(variable, value)
    return env


PRUNE_MISSING = "this build of vestige has no prune command (retention, issue 3)"


def prune_available() -> bool:
    """Whether ``vestige prune`` exists in this build (exercise 4 needs it)."""
    from vestige.cli import app

    return "prune" in app.commands


def play(root: Path, number: int, environ: Mapping[str, str]) -> Iterator[Played]:
    """Play exercise ``number``'s script in the clone at ``root``, step by step.

    Exercise 4 stops before its first ``vestige prune`` when this build has none.

    Raises:
        StepFailed: A command exited non-zero; the message holds its output.
    """
    for step in SCRIPT[number]:
        is_prune = isinstance(step, Command) and step.argv[:2] == ("vestige", "prune")
        if is_prune and not prune_available():
            return
        started = time.perf_counter()
        if isinstance(step, Check):
            report = check(number, root, environ)
            hint = None if report.done else report.missing.hint if report.missing else ""
            yield Played(step, time.perf_counter() - started, hint)
            continue
        result = subprocess.run(
            step.argv,
            cwd=root if step.at_root else root / WORKSPACE,
            env=dict(environ),
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise StepFailed(f"{step} exited {result.returncode}:\n{result.stdout}{result.stderr}")
        yield Played(step, time.perf_counter() - started)


def snapshot(source: Path, destination: Path) -> Path:
    """A new repository at ``destination`` whose ``main`` holds ``source``'s working tree.

    Uncommitted changes are included (ignored files are not), so a maintainer can play
    the workshop before committing.
    """
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=source,
        capture_output=True,
        check=True,
    ).stdout.decode()
    destination.mkdir(parents=True)
    for name in filter(None, listed.split("\0")):
        path = source / name
        if path.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
            target.chmod(path.stat().st_mode)
    env = learner_environment()
    for argv in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "add", "-A"],
        ["git", "commit", "-q", "-m", "Snapshot of the working tree"],
    ):
        subprocess.run(argv, cwd=destination, env=env, capture_output=True, check=True)
    return destination
