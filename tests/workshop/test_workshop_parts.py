"""The workshop's pure parts: how workspaces are layered, how a revert is recognised,
and the kit's shape: four modules on Vestige's public API."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from tests.support.workshop_walkthrough import constants, matches
from workshop.branches import EXERCISES, _workspace, exercise
from workshop.checks import _is_revert


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


def test_a_field_left_in_an_expected_hint_matches_what_only_the_run_knows() -> None:
    expected = "the database is at revision {revision}, which is stale: reset"
    assert matches(expected, "the database is at revision 0123abcd, which is stale: reset")
    assert not matches(expected, "the database is at revision , which is stale: reset")
    assert not matches(expected, "the database is at revision 0123abcd, which is stale")
    assert matches("a set: __versioned__ = {}", "a set: __versioned__ = {}")
    assert not matches("a set: __versioned__ = {}", "a set: __versioned__ = {x}")
    assert matches(None, None) and not matches(None, "done")


def test_the_kit_constants_are_read_without_running_the_kit() -> None:
    db = constants("exercise-1/start/db.py")
    assert db["START_OVER"].startswith("python db.py reset")
    assert set(db["AFTER_RESET"]) == {item.number for item in EXERCISES}
    assert "engine" not in db and "HERE" not in db  # not constants: skipped
    for script in ("exercise-1/{}/run.py", "exercise-2/{}/crud.py"):
        start, solution = (constants(script.format(layer)) for layer in ("start", "solution"))
        assert start["ALREADY_THERE"] == solution["ALREADY_THERE"]
        assert start["ALREADY_THERE"].endswith(db["START_OVER"])


KIT_MODULES = {"__init__", "cli", "branches", "checks", "messages"}


def kit_problems(package: Path) -> list[str]:
    """What breaks the kit's shape: a module beyond the four, or an import of Vestige's
    CLI (``vestige.cli*``) or of a private name (``_...``)."""
    modules = sorted(package.glob("*.py"))
    problems = [f"{p.name}: one module too many" for p in modules if p.stem not in KIT_MODULES]
    for path in modules:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                names = [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                first, *rest = name.split(".")
                if first == "vestige" and any(part.startswith(("_", "cli")) for part in rest):
                    problems.append(f"{path.name}: imports {name}")
    return problems


def test_the_kit_is_four_modules_on_vestiges_public_api_only() -> None:
    assert kit_problems(Path(__file__).resolve().parents[2] / "workshop") == []
