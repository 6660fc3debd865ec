"""``vestige check`` reads the Alembic configuration as ``alembic`` reads it.

alembic.ini alone (``alembic init -t generic``), ``[tool.alembic]`` beside an alembic.ini
holding only the URL and logging (``-t pyproject``), ``[tool.alembic]`` alone (this
project), and a file named with ``-c`` or ``ALEMBIC_CONFIG``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from tests.support.alembic_projects import alembic_init
from vestige.cli import app
from vestige.cli.check import OK_LINE
from vestige.migrations.check import NO_ALEMBIC_CONFIG, NO_CONFIG_FILE, project_alembic_config
from vestige.testing import fast_sqlite  # noqa: F401 (a fixture)

pytestmark = pytest.mark.usefixtures("fast_sqlite")

OK = OK_LINE.format(heads="e4767685b210", version_tables=5, native="") + "\n"


def _check(
    project: Path, db_url: str, *args: str, environ: dict[str, str] | None = None
) -> tuple[int, str]:
    runner = CliRunner()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project)
        result = runner.invoke(
            app, ["check", *args], env={"DATABASE_URL": db_url, **(environ or {})}
        )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


@pytest.mark.parametrize("template", ["generic", "pyproject"])
def test_check_reads_what_alembic_init_writes(
    migrated_engine: sa.Engine, db_url: str, tmp_path: Path, template: str
) -> None:
    project = alembic_init(tmp_path / template, template)
    assert _check(project, db_url) == (0, OK)


def test_check_reads_a_config_named_by_dash_c_or_alembic_config(
    migrated_engine: sa.Engine, db_url: str, tmp_path: Path
) -> None:
    project = alembic_init(tmp_path / "p", "generic")
    elsewhere = project / "deploy"
    elsewhere.mkdir()
    (project / "alembic.ini").rename(elsewhere / "migrations.ini")
    shutil.move(project / "migrations", elsewhere / "migrations")
    assert _check(project, db_url)[0] == 2  # alembic.ini is gone: nothing to read
    assert _check(project, db_url, "-c", "deploy/migrations.ini") == (0, OK)
    assert _check(project, db_url, environ={"ALEMBIC_CONFIG": "deploy/migrations.ini"}) == (0, OK)


def test_alembic_config_named_twice_reads_both_files(tmp_path: Path) -> None:
    project = alembic_init(tmp_path / "p", "pyproject")
    other = tmp_path / "other"
    other.mkdir()
    shutil.move(project / "pyproject.toml", other / "pyproject.toml")
    config = project_alembic_config(
        tmp_path, config_files=[str(project / "alembic.ini"), str(other / "pyproject.toml")]
    )
    # [tool.alembic]'s %(here)s is the directory of the pyproject.toml named
    assert config.get_alembic_option("script_location") == f"{other.as_posix()}/migrations"
    assert config.get_main_option("sqlalchemy.url") == "driver://user:pass@localhost/dbname"


def test_missing_alembic_config_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.vestige]\nmodels = "models"\n')
    db_url = f"sqlite:///{tmp_path / 'app.db'}"
    assert _check(tmp_path, db_url) == (
        2,
        "error: " + NO_ALEMBIC_CONFIG.format(root=tmp_path) + "\n",
    )
    assert _check(tmp_path, db_url, "-c", "nowhere.ini") == (
        2,
        "error: " + NO_CONFIG_FILE.format(path="nowhere.ini") + "\n",
    )
