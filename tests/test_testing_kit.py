"""vestige.testing migrates a scratch database only, whatever the project's env.py does.

Each test makes a project with ``alembic init -t TEMPLATE`` (Alembic's own ``generic``,
``pyproject`` and ``async`` env.py, plus the two Vestige lines the README asks for), points
``DATABASE_URL`` at a database at head full of rows, and runs the kit's seven tests in
pytest as a user would. Afterwards every row of that database is still there.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.support.alembic_projects import alembic_init
from tests.support.project import ROOT
from vestige.migrations import probe
from vestige.testing import (
    ENV_PY_ELSEWHERE,
    NOT_EMPTY,
    SCRATCH_PREFIX,
    fast_sqlite,  # noqa: F401 (a fixture)
)

pytestmark = pytest.mark.usefixtures("fast_sqlite")

TEMPLATES = ("generic", "pyproject", "async")
CONFTEST = 'pytest_plugins = ["vestige.testing"]\n'
TESTS = "from vestige.testing import *  # noqa: F403\n"
# The change ENV_PY_ELSEWHERE asks for, in each template's run_migrations_online().
SYNC_FIX = (
    "connectable = engine_from_config(",
    'connectable = config.attributes.get("connection") or engine_from_config(',
)
ASYNC_FIX = (
    "    asyncio.run(run_async_migrations())\n",
    '    connectable = config.attributes.get("connection")\n'
    "    if connectable is None:\n"
    "        asyncio.run(run_async_migrations())\n"
    "        return\n"
    "    with connectable.connect() as connection:\n"
    "        do_run_migrations(connection)\n",
)


def _contents(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (alembic_version included), sorted."""
    metadata = sa.MetaData()
    metadata.reflect(engine)
    with engine.connect() as connection:
        return {
            name: sorted(
                (tuple(map(repr, row)) for row in connection.execute(sa.select(table))),
            )
            for name, table in metadata.tables.items()
        }


@pytest.fixture
def full_database(migrated_engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    """The application's database at head, with rows in every table."""
    maker = probe.RowMaker({})
    for _ in range(3):
        with migrated_engine.begin() as connection:
            maker.fill(connection)
    contents = _contents(migrated_engine)
    migrated_engine.dispose()
    assert all(contents.values()), contents
    return contents


def _project(tmp_path: Path, template: str, *, fixed: bool) -> Path:
    project = alembic_init(tmp_path / template, template)
    (project / "test_migrations.py").write_text(TESTS, encoding="utf-8")
    if fixed:
        env_py = project / "migrations" / "env.py"
        old, new = ASYNC_FIX if template == "async" else SYNC_FIX
        text = env_py.read_text(encoding="utf-8")
        assert text.count(old) == 1
        env_py.write_text(text.replace(old, new), encoding="utf-8")
    return project


def _application_url(db_url: str, template: str) -> str:
    """The URL the application uses: an async driver with the async template."""
    if template != "async":
        return db_url
    url = sa.make_url(db_url)
    driver = "sqlite+aiosqlite" if url.get_backend_name() == "sqlite" else "postgresql+asyncpg"
    return url.set(drivername=driver).render_as_string(hide_password=False)


def _pytest(project: Path, database_url: str) -> tuple[int, subprocess.CompletedProcess[str]]:
    """Run the project's tests in a new pytest process; its pid names its scratch databases."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "PYTHONPATH": str(ROOT),  # the reference models
    }
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command += ["-p", "no:pytest_alembic"]
    with subprocess.Popen(
        command, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        stdout, stderr = process.communicate(timeout=600)
    return process.pid, subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def _scratch_databases(engine: sa.Engine, pid: int) -> list[str]:
    """The scratch databases made by process ``pid`` that still exist."""
    if engine.dialect.name != "postgresql":
        return []
    with engine.connect() as connection:
        return list(
            connection.scalars(
                sa.text("SELECT datname FROM pg_database WHERE starts_with(datname, :prefix)"),
                {"prefix": f"{SCRATCH_PREFIX}{pid}_"},
            )
        )


@pytest.fixture
def run_kit(
    full_database: dict[str, list[tuple[Any, ...]]],
    migrated_engine: sa.Engine,
    db_url: str,
    tmp_path: Path,
) -> Callable[..., tuple[Path, subprocess.CompletedProcess[str]]]:
    """Run the kit's tests in a new project; afterwards the application's database must be
    as it was and every scratch database made must be gone."""

    def run(
        template: str, *, fixed: bool, conftest: str = CONFTEST
    ) -> tuple[Path, subprocess.CompletedProcess[str]]:
        project = _project(tmp_path, template, fixed=fixed)
        (project / "conftest.py").write_text(conftest, encoding="utf-8")
        pid, result = _pytest(project, _application_url(db_url, template))
        assert _contents(migrated_engine) == full_database
        assert _scratch_databases(migrated_engine, pid) == []
        return project, result

    return run


@pytest.mark.parametrize("template", TEMPLATES)
def test_env_py_that_ignores_the_connection_is_refused_before_anything_runs(
    run_kit: Callable[..., tuple[Path, subprocess.CompletedProcess[str]]], template: str
) -> None:
    project, result = run_kit(template, fixed=False)
    assert result.returncode == 1, result.stdout
    refusal = ENV_PY_ELSEWHERE.format(env_py=project / "migrations" / "env.py")
    # each of the seven tests fails at setup, with that one line and no traceback
    assert result.stdout.splitlines().count(refusal) == 7, result.stdout
    assert "7 errors" in result.stdout and "Traceback" not in result.stdout


@pytest.mark.parametrize("template", ["generic", "async"])
def test_env_py_using_the_connection_runs_the_kit_on_a_scratch_database(
    run_kit: Callable[..., tuple[Path, subprocess.CompletedProcess[str]]], template: str
) -> None:
    _, result = run_kit(template, fixed=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "7 passed" in result.stdout


def test_an_alembic_engine_holding_tables_is_refused(
    run_kit: Callable[..., tuple[Path, subprocess.CompletedProcess[str]]],
    full_database: dict[str, list[tuple[Any, ...]]],
    migrated_engine: sa.Engine,
) -> None:
    conftest = CONFTEST + (
        "import os\nimport pytest\nimport sqlalchemy as sa\n\n\n"
        "@pytest.fixture\ndef alembic_engine():\n"
        '    return sa.create_engine(os.environ["DATABASE_URL"])\n'
    )
    _, result = run_kit("generic", fixed=True, conftest=conftest)
    assert result.returncode == 1
    tables = ", ".join(sorted(full_database))
    refusal = NOT_EMPTY.format(url=migrated_engine.url.render_as_string(), tables=tables)
    assert result.stdout.splitlines().count(refusal) == 7, result.stdout
