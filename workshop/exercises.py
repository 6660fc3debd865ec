"""The exercises, and which files make up each one's starting state and solution.

Exercise N builds on exercise N-1 solved: its learner workspace (``exercise/`` on the
branch) is every earlier ``start/`` and ``solution/`` laid over each other in order, then
its own ``start/``; its solution adds its ``solution/`` on top. A later layer's file
replaces an earlier one at the same path.
"""

from __future__ import annotations

from dataclasses import dataclass

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
