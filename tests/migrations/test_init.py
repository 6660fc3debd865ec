"""``vestige init`` sets up an application of its own, from each of Alembic's templates.

Each project holds the ``blog`` models (integer, UUID and composite keys, a many-to-many
association, a column named ``order``). After ``alembic init -t TEMPLATE`` (or nothing:
``vestige init`` makes the set-up), ``vestige init`` runs as a user runs it, then
``alembic revision --autogenerate``, ``alembic upgrade head`` and ``vestige check``, on
SQLite and PostgreSQL. Everything runs in subprocesses: the blog's models must not join
this test process's versioning manager.
"""

from __future__ import annotations

import difflib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support.init_projects import BLOG_VERSION_TABLES, STEPS, alembic_init, blog_project
from vestige.migrations.init import MULTIDB, NO_MODELS, NOT_RECOGNISED, vestige_env_py

BIN = Path(sys.executable).parent
TEMPLATES = ("generic", "pyproject", "async", "pyproject_async")


def _run(
    project: Path, *args: str, database_url: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "VESTIGE_MODELS"}}
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    return subprocess.run(
        [str(BIN / args[0]), *args[1:]],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _files(project: Path) -> dict[str, str]:
    return {
        path.relative_to(project).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(project.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def _async_url(url: str) -> str:
    parsed = sa.make_url(url)
    driver = "sqlite+aiosqlite" if parsed.get_backend_name() == "sqlite" else "postgresql+asyncpg"
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _steps(
    project: Path, *steps: tuple[str, list[str], str | None]
) -> list[subprocess.CompletedProcess[str]]:
    """Run ``vestige``/``alembic`` commands in order, in one new Python process; stops at
    the first that fails."""
    plan = project.parent / "steps.json"
    plan.write_text(json.dumps([list(step) for step in steps]), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "VESTIGE_MODELS"}}
    run = subprocess.run(
        [sys.executable, "-c", STEPS, str(plan)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return [
        subprocess.CompletedProcess(step[:2], code, out, err)
        for step, (code, out, err) in zip(
            steps, json.loads(run.stdout.splitlines()[-1]), strict=False
        )
    ]


@pytest.mark.parametrize("template", [*TEMPLATES, None], ids=[*TEMPLATES, "no-alembic"])
def test_init_then_autogenerate_upgrade_and_check(
    tmp_path: Path, db_url: str, template: str | None
) -> None:
    project = blog_project(tmp_path / "app")
    if template is not None:
        alembic_init(project, template)
    # the async templates connect with an async driver; vestige check with a sync one
    url = _async_url(db_url) if template and "async" in template else db_url

    (init,) = _steps(project, ("vestige", ["init", "--models", "blog.models"], None))
    assert "migrations/env.py" in _ok(init)
    set_up = _files(project)
    again, revision, upgrade, check = _steps(
        project,
        ("vestige", ["init"], None),
        ("alembic", ["revision", "--autogenerate", "-m", "blog"], url),
        ("alembic", ["upgrade", "head"], url),
        ("vestige", ["check"], db_url),
    )
    # a second run changes nothing (the revision is the only new file)
    assert "nothing to change" in _ok(again)
    _ok(revision)
    _ok(upgrade)
    assert "ok: at head" in _ok(check)
    (script,) = (project / "migrations" / "versions").glob("*_blog.py")
    after = _files(project)
    assert set(after) - set(set_up) == {script.relative_to(project).as_posix()}
    assert {name: after[name] for name in set_up} == set_up
    text = script.read_text(encoding="utf-8")
    assert all(f"op.create_table('{table}'" in text for table in BLOG_VERSION_TABLES), text

    engine = sa.create_engine(db_url)
    try:
        tables = set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert tables >= BLOG_VERSION_TABLES


HANDED_OVER = """\
import sys

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

engine = sa.create_engine(sys.argv[1])
config = Config("alembic.ini", toml_file="pyproject.toml")
if sys.argv[2] == "connection":
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
else:
    config.attributes["connection"] = engine
    command.upgrade(config, "head")
engine.dispose()
"""


@pytest.mark.parametrize(
    ("template", "handed"),
    # pytest-alembic and vestige.testing hand over an Engine; Alembic's cookbook a Connection
    [("generic", "engine"), ("async", "connection")],
)
def test_env_py_migrates_the_connection_a_harness_hands_over(
    tmp_path: Path, db_url: str, template: str, handed: str
) -> None:
    project = blog_project(tmp_path / "app")
    alembic_init(project, template)
    _ok(_run(project, "vestige", "init", "--models", "blog.models"))
    url = _async_url(db_url) if template == "async" else db_url
    _ok(_run(project, "alembic", "revision", "--autogenerate", "-m", "blog", database_url=url))
    (project / "handed.py").write_text(HANDED_OVER, encoding="utf-8")

    # DATABASE_URL names a database nobody can reach: only the handed-over one is used
    unreachable = "postgresql+psycopg2://nobody@127.0.0.1:1/nowhere"
    _ok(_run(project, "python", "handed.py", db_url, handed, database_url=unreachable))

    engine = sa.create_engine(db_url)
    try:
        assert set(sa.inspect(engine).get_table_names()) >= BLOG_VERSION_TABLES
    finally:
        engine.dispose()


def test_dry_run_shows_the_diff_and_writes_nothing(tmp_path: Path) -> None:
    project = blog_project(tmp_path / "app")
    alembic_init(project, "generic")
    before = _files(project)

    shown = _ok(_run(project, "vestige", "init", "--models", "blog.models", "--dry-run"))
    assert _files(project) == before
    assert shown.splitlines()[-1] == "dry run: would write 3 file(s); nothing was written"

    _ok(_run(project, "vestige", "init", "--models", "blog.models"))
    after = _files(project)
    # the diff shown is exactly what the real run wrote
    expected = "".join(
        "".join(
            difflib.unified_diff(
                before[name].splitlines(keepends=True),
                after[name].splitlines(keepends=True),
                fromfile=f"a/{name}",
                tofile=f"b/{name}",
            )
        )
        for name in sorted(after)
        if before.get(name) != after[name]
    )
    assert shown == expected + shown.splitlines(keepends=True)[-1]
    assert "+import blog.models\n" in shown
    assert '+models = "blog.models"\n' in shown


def test_multidb_env_py_is_refused_and_nothing_changes(tmp_path: Path) -> None:
    project = blog_project(tmp_path / "app")
    alembic_init(project, "multidb")
    before = _files(project)

    result = _run(project, "vestige", "init", "--models", "blog.models")

    assert result.returncode == 2, result.stdout + result.stderr
    message = NOT_RECOGNISED.format(env_py="migrations/env.py", reason=MULTIDB)
    assert result.stderr == f"error: {message}\n"
    assert _files(project) == before


def test_env_py_without_the_template_statements_is_refused(tmp_path: Path) -> None:
    project = blog_project(tmp_path / "app")
    alembic_init(project, "generic")
    env_py = project / "migrations" / "env.py"
    env_py.write_text(
        env_py.read_text(encoding="utf-8").replace("engine_from_config(", "create_my_engine("),
        encoding="utf-8",
    )
    before = _files(project)

    result = _run(project, "vestige", "init", "--models", "blog.models")

    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("error: cannot set up migrations/env.py: it has no ")
    assert result.stderr.count("\n") == 1
    assert _files(project) == before


def test_models_module_is_detected_or_asked_for(tmp_path: Path) -> None:
    project = blog_project(tmp_path / "app")
    alembic_init(project, "generic")
    _ok(_run(project, "vestige", "init"))
    assert 'models = "blog.models"' in (project / "pyproject.toml").read_text(encoding="utf-8")

    other = blog_project(tmp_path / "two")
    (other / "shop").mkdir()
    (other / "shop" / "__init__.py").write_text("", encoding="utf-8")
    (other / "shop" / "models.py").write_text("", encoding="utf-8")
    before = _files(other)
    result = _run(other, "vestige", "init")
    assert result.returncode == 2
    found = NO_MODELS.format(found="blog.models, shop.models found")
    assert result.stderr == f"error: {found}\n"
    assert _files(other) == before


def test_reference_env_py_is_left_as_it_is() -> None:
    from tests.support.project import ROOT

    text = (ROOT / "migrations" / "env.py").read_text(encoding="utf-8")
    assert vestige_env_py(text, "models", "models.Base.metadata") == text
