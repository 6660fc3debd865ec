"""New projects as ``alembic init`` writes them, holding this project's migration history.

Tests use them to run Vestige against Alembic's own templates (``generic``,
``pyproject``, ``async``), with the reference models and revisions.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.project import ROOT

PYPROJECT = '[tool.vestige]\nmodels = "models"\n'

# The two Vestige lines the README tells users to add to an Alembic env.py (plus the
# models, which every env.py names itself).
VESTIGE_IMPORTS = (
    "import models\n"
    "from vestige.migrations import check_version_tables, comparison_options\n\n"
    "target_metadata = models.Base.metadata\n"
    "check_version_tables(target_metadata)\n"
)
TEMPLATE_CONFIGURE = re.compile(
    r"context\.configure\(\s*connection=connection, target_metadata=target_metadata\s*\)"
)
VESTIGE_CONFIGURE = (
    "context.configure(connection=connection, target_metadata=target_metadata, "
    "**comparison_options(target_metadata))"
)


def alembic_init(project: Path, template: str) -> Path:
    """Run ``alembic init -t TEMPLATE migrations`` in ``project`` (made, with a pyproject.toml).

    The reference project's revisions replace the empty ``versions`` directory, and
    ``env.py`` gets the models and the two Vestige lines.

    Returns:
        The project directory.
    """
    project.mkdir(parents=True, exist_ok=True)
    (project / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    subprocess.run(
        [sys.executable, "-m", "alembic", "init", "-t", template, "migrations"],
        cwd=project,
        check=True,
        capture_output=True,
    )
    versions = project / "migrations" / "versions"
    shutil.rmtree(versions)
    shutil.copytree(
        ROOT / "migrations" / "versions", versions, ignore=shutil.ignore_patterns("__pycache__")
    )
    env_py = project / "migrations" / "env.py"
    text = env_py.read_text(encoding="utf-8")
    text, configures = TEMPLATE_CONFIGURE.subn(VESTIGE_CONFIGURE, text)
    assert configures == 1 and "target_metadata = None\n" in text, template
    env_py.write_text(text.replace("target_metadata = None\n", VESTIGE_IMPORTS), encoding="utf-8")
    return project
