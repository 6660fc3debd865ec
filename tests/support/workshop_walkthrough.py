"""A learner's run through every exercise, scripted: the commands each README asks for,
with ``check N`` at the points where a learner would run it and the hint it must give.
(The revisions of ``solution-3`` are played by exercise 4, which starts from them.)

tests/workshop/test_workshop.py plays each exercise on SQLite and PostgreSQL in a
scratch clone (``./scripts/workshop walkthrough`` runs those tests). Writing the code is
played by checking out the solution (the whole ``solution-N`` branch, or one file of it).
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vestige.errors import VERSION_TABLES_MISSING
from workshop import messages
from workshop.branches import WORKSPACE
from workshop.checks import ORM_TABLES, check

KIT = Path(__file__).resolve().parents[2] / "workshop"
"""The exercises' own files, ``exercise-N/start`` and ``exercise-N/solution``."""
KIT_DB = "exercise-1/start/db.py"


def constants(path: str) -> dict[str, Any]:
    """The module-level constants of ``workshop/<path>``, names imported from db.py included.

    The exercises' scripts print hints of their own (``db.py``'s one-line errors,
    ``run.py``'s "already there"); the walkthrough compares what a script printed with
    them. Running the files to get them would declare the models and install ``db.py``'s
    error hook, so their module-level constants are evaluated from the source instead.

    Args:
        path: A kit file, relative to ``workshop/``, e.g. ``exercise-1/solution/run.py``.

    Returns:
        Name -> value for every top-level ``NAME = <expression>`` that can be evaluated
        from literals and the constants before it.
    """
    names: dict[str, Any] = {} if path == KIT_DB else constants(KIT_DB)
    tree = ast.parse((KIT / path).read_text(encoding="utf-8"))
    for node in tree.body:
        if not (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
        ):
            continue
        try:
            code = compile(ast.Expression(node.value), path, "eval")
            names[node.targets[0].id] = eval(code, {"__builtins__": {}}, dict(names))
        except Exception:  # not a constant (an engine, a compiled pattern): skipped
            continue
    return names


@dataclass(frozen=True)
class Command:
    """A command the learner types, in ``exercise/`` or (``at_root``) the repository root.

    Attributes:
        argv: The command.
        at_root: Run at the repository root rather than in ``exercise/``.
        exit_code: The exit code it must give (a wrong turn's is not 0).
        expected: A line its output must hold (a wrong turn's hint), or ``None``.
    """

    argv: tuple[str, ...]
    at_root: bool = False
    exit_code: int = 0
    expected: str | None = None

    def __str__(self) -> str:
        where = "" if self.at_root else f"{WORKSPACE}$ "
        return where + " ".join(self.argv)


@dataclass(frozen=True)
class Check:
    """``./scripts/workshop check N``, and the hint it must give (``None``: done)."""

    expected: str | None

    def __str__(self) -> str:
        return "check"


@dataclass(frozen=True)
class Edit:
    """The learner edits a file of ``exercise/``: ``old`` becomes ``new`` (a wrong turn)."""

    path: str
    old: str
    new: str

    def __str__(self) -> str:
        return f"edit {WORKSPACE}/{self.path}"


Step = Command | Check | Edit


def matches(expected: str | None, said: str | None) -> bool:
    """Whether ``said`` is ``expected``, where a ``{field}`` left in it stands for any text.

    Some hints name what only the run knows (a revision id Alembic made up): the script
    keeps the field, e.g. ``{revision}``, and any value matches it.
    """
    if expected is None or said is None:
        return expected == said
    pattern = "".join(
        ".+" if re.fullmatch(r"\{\w+\}", part) else re.escape(part)
        for part in re.split(r"(\{\w+\})", expected)
    )
    return re.fullmatch(pattern, said) is not None


@dataclass(frozen=True)
class Played:
    """One played step: what it was, how long it took, and what it said.

    ``hint`` is a check's hint; for a command with an ``expected`` line, that line if
    its output held it (else ``None``); for any other command, its last line of output.
    """

    step: Step
    seconds: float
    hint: str | None = None

    @property
    def as_expected(self) -> bool:
        if isinstance(self.step, Check):
            return matches(self.step.expected, self.hint)
        return isinstance(self.step, Edit) or self.step.expected is None or self.hint is not None


class StepFailed(Exception):
    """A command of the walkthrough exited with another code than expected."""


def run(*argv: str, exit_code: int = 0, says: str | None = None) -> Command:
    return Command(argv, exit_code=exit_code, expected=says)


def git(*argv: str) -> Command:
    return Command(("git", *argv), at_root=True)


def restore(branch: str, path: str) -> Command:
    """The learner undoes a wrong turn: the file as ``branch`` has it."""
    return git("checkout", branch, "--", f"{WORKSPACE}/{path}")


def error(line: str) -> str:
    """What ``db.py``'s error hook prints: one line on stderr."""
    return f"error: {line}"


ORM_TABLES_SORTED = sorted(ORM_TABLES)
DB = constants("exercise-1/start/db.py")
RUN = constants("exercise-1/solution/run.py")
CRUD = constants("exercise-2/solution/crud.py")
MAKE_HISTORY = constants("exercise-4/start/make_history.py")

# Exercise 1's wrong turn: the association table written after the class that uses it,
# as a learner who writes Step 1's list top to bottom would.
ASSOCIATION = """package_maintainer = sa.Table(
    "package_maintainer",
    Base.metadata,
    sa.Column("package_id", sa.ForeignKey("package.id"), primary_key=True),
    sa.Column("maintainer_id", sa.ForeignKey("maintainer.id"), primary_key=True),
)


"""
LAST_LINE_OF_MODELS = '        return f"<Maintainer {self.username}>"\n'
CONFIGURE_MAPPERS = "\nconfigure_mappers()\n"
COMMIT_IN_RUN = "        session.commit()\n        for package"
VERSION_TABLES = (
    "maintainer_version, package_maintainer_version, package_version, release_version, transaction"
)

SCRIPT: Mapping[int, tuple[Step, ...]] = {
    1: (
        git("checkout", "-q", "exercise-1"),
        Check(messages.NO_TABLES.format(table="package")),
        git("checkout", "-q", "solution-1"),
        # wrong turn: package_maintainer declared after Package, which uses it
        Edit("models.py", ASSOCIATION, ""),
        Edit("models.py", LAST_LINE_OF_MODELS, LAST_LINE_OF_MODELS + "\n\n" + ASSOCIATION.strip()),
        run(
            "python",
            "schema.py",
            "create",
            exit_code=1,
            says=error(
                DB["NOT_DEFINED"].format(
                    where="models.py line {line}",
                    error="name 'package_maintainer' is not defined",
                )
            ),
        ),
        restore("solution-1", "models.py"),
        run("python", "schema.py", "create"),
        Check(messages.NO_ROWS.format(table="package", minimum=2)),
        # wrong turn: run.py without its session.commit()
        Edit("run.py", COMMIT_IN_RUN, "        for package"),
        run("python", "run.py"),
        Check(messages.NO_ROWS.format(table="package", minimum=2)),
        restore("solution-1", "run.py"),
        run("python", "schema.py", "drop", says="drop: " + ", ".join(ORM_TABLES_SORTED)),
        run("python", "schema.py", "create"),
        run("python", "run.py"),
        # wrong turn: run.py once more
        run("python", "run.py", says=RUN["ALREADY_THERE"]),
        Check(None),
    ),
    2: (
        git("checkout", "-q", "exercise-2"),
        Check(messages.NO_VERSION_TABLE.format(table="package_version")),
        git("checkout", "-q", "solution-2"),
        # wrong turn: configure_mappers() forgotten
        Edit("models.py", CONFIGURE_MAPPERS, "\n"),
        run("python", "schema.py", "drop"),
        run("python", "schema.py", "create", says="create: " + ", ".join(ORM_TABLES_SORTED)),
        run(
            "python",
            "run.py",
            exit_code=1,
            says=error(
                DB["NO_VERSION_TABLES"].format(table="transaction", rebuild=DB["REBUILD_SCHEMA"])
            ),
        ),
        Check(messages.NO_VERSION_TABLE.format(table="package_version")),
        restore("solution-2", "models.py"),
        run("python", "schema.py", "drop"),
        run("python", "schema.py", "create"),
        run("python", "run.py"),
        run("python", "crud.py"),
        # wrong turn: crud.py once more
        run("python", "crud.py", says=CRUD["ALREADY_THERE"]),
        Check(messages.NO_REVERT),
        run("python", "history.py"),
        Check(None),
    ),
    3: (
        git("checkout", "-q", "exercise-3"),
        run("python", "db.py", "reset", says=DB["NEXT"].format(commands=DB["AFTER_RESET"][3])),
        Check(messages.NO_REVISION),
        # wrong turn: configure_mappers() forgotten; the guard refuses to write the revision
        Edit("models.py", CONFIGURE_MAPPERS, "\n"),
        run(
            "alembic",
            "revision",
            "--autogenerate",
            "-m",
            "initial DB",
            exit_code=255,
            says="FAILED: " + VERSION_TABLES_MISSING.format(tables=VERSION_TABLES),
        ),
        Check(messages.NO_REVISION),
        restore("exercise-3", "models.py"),
        run("alembic", "revision", "--autogenerate", "-m", "initial DB"),
        run("alembic", "upgrade", "head"),
        Check(messages.NO_SECOND_REVISION),
        restore("solution-3", "models.py"),
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
        # wrong turn: no python db.py reset; the database is at exercise 3's revision
        run(
            "alembic",
            "upgrade",
            "head",
            exit_code=255,
            says="FAILED: " + DB["STALE_REVISION"],
        ),
        Check(messages.STALE_REVISION.format(revision="{revision}", then=messages.STALE_THEN[4])),
        run("python", "db.py", "reset", says=DB["NEXT"].format(commands=DB["AFTER_RESET"][4])),
        Check(messages.NO_HISTORY_TABLES),
        run("alembic", "upgrade", "head"),
        run("python", "make_history.py"),
        # wrong turn: make_history.py once more
        run("python", "make_history.py", says=MAKE_HISTORY["ALREADY_THERE"]),
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


def play(root: Path, number: int, environ: Mapping[str, str]) -> Iterator[Played]:
    """Play exercise ``number``'s script in the clone at ``root``, step by step.

    Raises:
        StepFailed: A command exited with another code than expected, or an edit found
            nothing to change; the message holds the output.
    """
    for step in SCRIPT[number]:
        started = time.perf_counter()
        if isinstance(step, Check):
            report = check(number, root, environ)
            hint = None if report.done else report.missing.hint if report.missing else ""
            yield Played(step, time.perf_counter() - started, hint)
            continue
        if isinstance(step, Edit):
            path = root / WORKSPACE / step.path
            text = path.read_text(encoding="utf-8")
            if step.old not in text:
                raise StepFailed(f"{step}: {step.old!r} is not in it")
            path.write_text(text.replace(step.old, step.new, 1), encoding="utf-8")
            yield Played(step, time.perf_counter() - started)
            continue
        result = subprocess.run(
            step.argv,
            cwd=root if step.at_root else root / WORKSPACE,
            env=dict(environ),
            capture_output=True,
            text=True,
        )
        output = f"{result.stdout}{result.stderr}"
        if result.returncode != step.exit_code:
            raise StepFailed(f"{step} exited {result.returncode}:\n{output}")
        lines = [line for line in output.splitlines() if line.strip()]
        # hint: the line it had to say (None when missing), else its last line
        said = next((line for line in lines if matches(step.expected, line)), None)
        if step.expected is None:
            said = lines[-1] if lines else None
        yield Played(step, time.perf_counter() - started, said)


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
