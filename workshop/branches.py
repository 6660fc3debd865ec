"""``setup``: the branches ``exercise-N`` and ``solution-N``, built from ``main`` alone.

Only git's plumbing is used: a tree is built in a temporary index from blobs ``main``
already holds, committed with ``commit-tree``, and the branch pointed at it with
``update-ref``. The working tree, the checked-out branch and ``main`` are never
touched, and no remote is contacted. Author, committer and dates are fixed (the date is
``main``'s), so running setup twice makes the very same commits.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from workshop import messages
from workshop.errors import WorkshopError, WorkshopUsageError
from workshop.exercises import EXERCISES, WORKSPACE, Exercise
from workshop.git import Git

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
