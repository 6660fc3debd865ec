"""The workshop's pure parts: how workspaces are layered, how a revert is recognised."""

from __future__ import annotations

from typing import Any

import pytest

from workshop.branches import _workspace
from workshop.exercise_checks import _is_revert
from workshop.exercises import EXERCISES, exercise


def version(operation: int, summary: str, transaction: int) -> dict[str, Any]:
    return {
        "id": 1,
        "name": "flask",
        "summary": summary,
        "summary_mod": True,
        "transaction_id": transaction,
        "end_transaction_id": None,
        "operation_type": operation,
    }


@pytest.mark.parametrize(
    ("summaries", "reverted"),
    [
        (["A", "B", "A"], True),  # the third brings the first back
        (["A", "B", "C", "B"], True),  # back to any older one
        (["A", "B", "C"], False),
        (["A", "B"], False),
        (["A", "A", "A"], False),  # equal to the one before is no revert
    ],
)
def test_a_revert_is_an_update_back_to_older_values(summaries: list[str], reverted: bool) -> None:
    chain = [
        version(0 if index == 0 else 1, summary, index + 1)
        for index, summary in enumerate(summaries)
    ]
    assert _is_revert(chain) is reverted


def test_a_delete_is_no_revert() -> None:
    chain = [version(0, "A", 1), version(1, "B", 2), version(2, "A", 3)]
    assert not _is_revert(chain)


def test_each_exercise_starts_from_the_one_before_solved() -> None:
    assert exercise(1).layers(solved=False) == ["workshop/exercise-1/start"]
    assert exercise(3).layers(solved=True) == [
        "workshop/exercise-1/start",
        "workshop/exercise-1/solution",
        "workshop/exercise-2/start",
        "workshop/exercise-2/solution",
        "workshop/exercise-3/start",
        "workshop/exercise-3/solution",
    ]
    with pytest.raises(KeyError):
        exercise(len(EXERCISES) + 1)


def test_later_layers_win_and_the_readme_is_the_exercises_own() -> None:
    blobs = {
        "workshop/exercise-1/README.md": ("100644", "r1"),
        "workshop/exercise-1/start/models.py": ("100644", "m0"),
        "workshop/exercise-1/solution/models.py": ("100644", "m1"),
        "workshop/exercise-2/README.md": ("100644", "r2"),
        "workshop/exercise-2/start/crud.py": ("100644", "c0"),
        "workshop/exercise-2/solution/crud.py": ("100644", "c1"),
        "workshop/README.md": ("100644", "guide"),
    }
    assert _workspace(blobs, exercise(2), solved=False) == {
        "exercise/models.py": ("100644", "m1"),
        "exercise/crud.py": ("100644", "c0"),
        "exercise/README.md": ("100644", "r2"),
    }
    assert _workspace(blobs, exercise(1), solved=True)["exercise/models.py"] == ("100644", "m1")
