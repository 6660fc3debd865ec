"""The exercises and their branches: ``setup`` builds ``exercise-N`` and ``solution-N``.

Exercise N builds on exercise N-1 solved: its learner workspace (``exercise/`` on the
branch) is every earlier ``start/`` and ``solution/`` laid over each other in order, then
its own ``start/``; its solution adds its ``solution/`` on top. A later layer's file
replaces an earlier one at the same path.

Only git's plumbing is used: a tree is built in a temporary index from blobs ``main``
already holds, committed with ``commit-tree``, and the branch pointed at it with
``update-ref``. The working tree, the checked-out branch and ``main`` are never
touched, and no remote is contacted. Author, committer and dates are fixed (the date is
``main``'s), so running setup twice makes the very same commits.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from workshop import messages
from workshop.messages import WorkshopError, WorkshopUsageError

WORKSPACE = "exercise"
"""The folder, at the root of an exercise branch, where the learner works."""

SOURCE = "workshop"
"""The folder on ``main`` that holds ``exercise-N/`` for every exercise."""


@dataclass(frozen=True)
class Exercise:
    """One exercise of the workshop.

    Attributes:
        number: 1, 2, ...; the branches are ``exercise-<number>`` and ``solution-<number>``.
        title: What it is about, in a few words.
    """

    number: int
    title: str

    @property
    def folder(self) -> str:
        """Its folder on ``main``, relative to the repository root."""
        return f"{SOURCE}/exercise-{self.number}"

    @property
    def branch(self) -> str:
        return f"exercise-{self.number}"

    @property
    def solution_branch(self) -> str:
        return f"solution-{self.number}"

    def layers(self, solved: bool) -> list[str]:
        """The overlay folders that make up its workspace, first to last."""
        folders: list[str] = []
        for earlier in EXERCISES[: self.number - 1]:
            folders += [f"{earlier.folder}/start", f"{earlier.folder}/solution"]
        folders.append(f"{self.folder}/start")
        if solved:
            folders.append(f"{self.folder}/solution")
        return folders


EXERCISES = (
    Exercise(1, "ORM: models, relationships, create_all(), a session"),
    Exercise(2, "audit tables: versioned models, history, revert"),
    Exercise(3, "migrations: Alembic autogenerate, upgrade, downgrade"),
    Exercise(4, "retention: a policy, a dry run, a prune"),
)


def exercise(number: int) -> Exercise:
    """The exercise with this number; ``KeyError`` when there is none."""
    if 1 <= number <= len(EXERCISES):
        return EXERCISES[number - 1]
    raise KeyError(number)


# --- git -----------------------------------------------------------------------------


class Git:
    """The git repository whose working tree holds ``path``."""

    def __init__(self, path: Path) -> None:
        try:
            top = subprocess.run(
                ["git", "-C", str(path), "rev-parse", "--show-toplevel"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        except (subprocess.CalledProcessError, FileNotFoundError):
            raise WorkshopUsageError(messages.NOT_A_REPOSITORY.format(path=path)) from None
        self.root = Path(top)

    def run(
        self, *args: str, env: Mapping[str, str] | None = None, stdin: str | None = None
    ) -> str:
        """Run ``git ARGS`` at the root; its stdout, stripped. Raises on failure."""
        result = subprocess.run(
            ["git", *args],
            cwd=self.root,
            input=stdin,
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
        )
        if result.returncode != 0:
            raise subprocess.CalledProcessError(
                result.returncode, ["git", *args], result.stdout, result.stderr
            )
        return result.stdout.strip()

    def resolve(self, ref: str) -> str | None:
        """The commit ``ref`` names, or ``None`` when it names none."""
        try:
            return self.run("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
        except subprocess.CalledProcessError:
            return None

    def current_branch(self) -> str | None:
        """The checked-out branch, or ``None`` on a detached HEAD."""
        try:
            return self.run("symbolic-ref", "--quiet", "--short", "HEAD")
        except subprocess.CalledProcessError:
            return None

    def is_dirty(self) -> bool:
        """Whether the working tree has changes or untracked files (ignored ones aside)."""
        return bool(self.run("status", "--porcelain"))


# --- setup ---------------------------------------------------------------------------

AUTHOR_NAME = "Vestige workshop"
AUTHOR_EMAIL = "workshop@vestige.invalid"


@dataclass(frozen=True)
class BranchResult:
    """What setup did to one branch.

    Attributes:
        branch: ``exercise-N`` or ``solution-N``.
        commit: The commit the branch now points at.
        state: ``created``, ``updated`` or ``unchanged``.
        subject: The commit's subject line.
    """

    branch: str
    commit: str
    state: str
    subject: str


@dataclass(frozen=True)
class _Planned:
    branch: str
    commit: str
    subject: str


def setup(path: Path, base: str = "main") -> list[BranchResult]:
    """Create or refresh every exercise and solution branch from ``base``.

    Args:
        path: Anywhere in the repository's working tree.
        base: The branch whose ``workshop/`` folder the exercises come from.

    Returns:
        One result per branch, exercise-1, solution-1, exercise-2, ...

    Raises:
        WorkshopUsageError: Not a git repository, or ``base`` is missing or has no exercises.
        WorkshopError: The working tree is dirty, or a branch would be moved that is
            checked out or holds commits setup did not make.
    """
    git = Git(path)
    if git.is_dirty():
        raise WorkshopError(messages.DIRTY_TREE)
    base_commit = git.resolve(f"refs/heads/{base}")
    if base_commit is None:
        raise WorkshopUsageError(messages.NO_BASE.format(base=base))
    blobs = _files(git, base_commit)
    if not any(path.startswith(f"{EXERCISES[0].folder}/") for path in blobs):
        raise WorkshopUsageError(messages.NO_EXERCISES.format(base=base))

    env = _identity(git, base_commit)
    planned: list[_Planned] = []
    for exercise in EXERCISES:
        start = _commit(git, base_commit, base_commit, blobs, exercise, solved=False, env=env)
        planned.append(start)
        planned.append(
            _commit(git, base_commit, start.commit, blobs, exercise, solved=True, env=env)
        )

    current = git.current_branch()
    existing = {plan.branch: git.resolve(f"refs/heads/{plan.branch}") for plan in planned}
    for plan in planned:
        before = existing[plan.branch]
        if before is None or before == plan.commit:
            continue
        if git.run("show", "-s", "--format=%ae", before) != AUTHOR_EMAIL:
            raise WorkshopError(messages.BRANCH_HAS_YOUR_COMMITS.format(branch=plan.branch))
        if plan.branch == current:
            raise WorkshopError(messages.BRANCH_CHECKED_OUT.format(branch=plan.branch, base=base))

    results = []
    for plan in planned:
        before = existing[plan.branch]
        if before == plan.commit:
            state = "unchanged"
        else:
            git.run("update-ref", f"refs/heads/{plan.branch}", plan.commit)
            state = "created" if before is None else "updated"
        results.append(BranchResult(plan.branch, plan.commit, state, plan.subject))
    return results


def _files(git: Git, commit: str) -> dict[str, tuple[str, str]]:
    """Every file under ``workshop/`` in ``commit``: path -> (mode, blob)."""
    listing = git.run("ls-tree", "-r", "--full-tree", "-z", commit, "workshop/")
    files = {}
    for entry in filter(None, listing.split("\0")):
        meta, path = entry.split("\t", 1)
        mode, kind, blob = meta.split()
        if kind == "blob":
            files[path] = (mode, blob)
    return files


def _identity(git: Git, base_commit: str) -> dict[str, str]:
    date = f"@{git.run('show', '-s', '--format=%ct', base_commit)} +0000"
    return {
        "GIT_AUTHOR_NAME": AUTHOR_NAME,
        "GIT_AUTHOR_EMAIL": AUTHOR_EMAIL,
        "GIT_AUTHOR_DATE": date,
        "GIT_COMMITTER_NAME": AUTHOR_NAME,
        "GIT_COMMITTER_EMAIL": AUTHOR_EMAIL,
        "GIT_COMMITTER_DATE": date,
    }


def _workspace(
    blobs: dict[str, tuple[str, str]], exercise: Exercise, solved: bool
) -> dict[str, tuple[str, str]]:
    """The workspace's files: path under ``exercise/`` -> (mode, blob)."""
    files: dict[str, tuple[str, str]] = {}
    for layer in exercise.layers(solved):
        prefix = f"{layer}/"
        for path, entry in blobs.items():
            if path.startswith(prefix):
                files[f"{WORKSPACE}/{path.removeprefix(prefix)}"] = entry
    readme = blobs.get(f"{exercise.folder}/README.md")
    if readme is not None:
        files[f"{WORKSPACE}/README.md"] = readme
    return files


def _commit(
    git: Git,
    base_commit: str,
    parent: str,
    blobs: dict[str, tuple[str, str]],
    exercise: Exercise,
    solved: bool,
    env: dict[str, str],
) -> _Planned:
    files = _workspace(blobs, exercise, solved)
    with tempfile.TemporaryDirectory() as scratch:
        index_env = {**env, "GIT_INDEX_FILE": os.path.join(scratch, "index")}
        git.run("read-tree", base_commit, env=index_env)
        stale = git.run("ls-files", "-z", "--", WORKSPACE, env=index_env)
        if stale:
            git.run("update-index", "--force-remove", "-z", "--stdin", env=index_env, stdin=stale)
        entries = "".join(f"{mode} {blob}\t{path}\0" for path, (mode, blob) in files.items())
        git.run("update-index", "--add", "-z", "--index-info", env=index_env, stdin=entries)
        tree = git.run("write-tree", env=index_env)
    if solved:
        branch, subject = exercise.solution_branch, f"Exercise {exercise.number}: a solution"
    else:
        branch = exercise.branch
        subject = f"Exercise {exercise.number}: {exercise.title} (starting state)"
    commit = git.run("commit-tree", tree, "-p", parent, "-m", subject, env=env)
    return _Planned(branch, commit, subject)
