"""The learner kit's own sentences, read from its files without running them.

The scripts in ``workshop/exercise-N/`` print hints of their own (``db.py``'s one-line
errors, ``run.py``'s "already there"); the walkthrough and the tests compare what a
script printed with these constants. Running the files to get them would declare the
models and install ``db.py``'s error hook, so their module-level constants are
evaluated from the source instead.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

SOURCE_ROOT = Path(__file__).resolve().parent
DB = "exercise-1/start/db.py"


def constants(path: str) -> dict[str, Any]:
    """The module-level constants of ``workshop/<path>``, names imported from db.py included.

    Args:
        path: A kit file, relative to ``workshop/``, e.g. ``exercise-1/solution/run.py``.

    Returns:
        Name -> value for every top-level ``NAME = <expression>`` that can be evaluated
        from literals and the constants before it.
    """
    names: dict[str, Any] = {} if path == DB else constants(DB)
    tree = ast.parse((SOURCE_ROOT / path).read_text(encoding="utf-8"))
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
