"""``vestige prune`` in-process (CliRunner) on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from sqlalchemy.orm import Session

import models
from tests.support.project import ROOT
from tests.support.retention_data import (
    PACKAGE_VERSION_TABLE,
    POLICY,
    ago,
    commit_at,
    history,
    history_engine,
    history_url,
    policy_file,
    postgres_history_url,
    snapshot,
    sqlite_history_template,
)
from vestige.cli import app
from vestige.cli import prune as cli_prune
from vestige.errors import ExitCode
from vestige.retention.lock import pruner_lock

# fixtures, imported to be found
__all__ = [
    "history",
    "history_engine",
    "history_url",
    "policy_file",
    "postgres_history_url",
    "sqlite_history_template",
]


@pytest.fixture
def one_package(history_engine: sa.Engine) -> sa.Engine:
    """One package written 700, 500 and 300 days ago: POLICY would prune its first version."""
    with Session(history_engine) as session:
        package = models.Package(name="a", summary="0")
        session.add(package)
        commit_at(session, ago(700))
        for age in (500, 300):
            package.summary = str(age)
            commit_at(session, ago(age))
    return history_engine


def vestige(url: str, *args: str | Path, input: str | None = None) -> Result:
    return CliRunner().invoke(
        app, ["prune", *map(str, args)], env={"DATABASE_URL": url}, input=input
    )


def package_versions(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(PACKAGE_VERSION_TABLE)).scalar_one()
        )


def test_help_has_examples() -> None:
    result = CliRunner().invoke(app, ["prune", "--help"])
    assert result.exit_code == 0
    assert "vestige prune --dry-run" in result.output
    assert "--batch-size N" in result.output


def test_dry_run_json_then_real_run_json_agree(
    history: sa.Engine, history_url: str, policy_file: Path
) -> None:
    before = snapshot(history)
    dry = vestige(history_url, "--policy", policy_file, "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    assert snapshot(history) == before
    real = vestige(history_url, "--policy", policy_file, "--yes", "--json", "--batch-size", "2")
    assert real.exit_code == 0, real.output
    dry_report, real_report = json.loads(dry.stdout), json.loads(real.stdout)
    # a dry run deletes nothing: its counts say what it would delete
    assert set(dry_report) == {"dry_run", "tables", "transactions_would_delete", "seconds"}
    assert set(real_report) == {"dry_run", "tables", "transactions_deleted", "seconds"}
    assert (dry_report["dry_run"], real_report["dry_run"]) == (True, False)
    would = [
        {"deleted" if key == "would_delete" else key: value for key, value in table.items()}
        for table in dry_report["tables"]
    ]
    assert would == real_report["tables"]
    assert dry_report["transactions_would_delete"] == real_report["transactions_deleted"] == 6
    package = next(t for t in real_report["tables"] if t["table"] == "package_version")
    assert set(package) == {"table", "examined", "deleted", "kept", "oldest_kept_issued_at"}
    assert (package["examined"], package["deleted"], package["kept"]) == (15, 6, 9)
    assert datetime.fromisoformat(package["oldest_kept_issued_at"]) < ago(299)
    assert isinstance(real_report["seconds"], float)
    assert package_versions(history) == 9


def test_human_report_says_would_delete_on_a_dry_run(
    history: sa.Engine, history_url: str, policy_file: Path
) -> None:
    dry = vestige(history_url, "--policy", policy_file, "--dry-run")
    assert dry.exit_code == 0
    assert "would delete" in dry.stdout
    assert cli_prune.DRY_RUN_SUMMARY.split("{")[0] in dry.stdout
    assert "nothing was deleted" in dry.stdout
    assert "Deleted" not in dry.stdout
    real = vestige(history_url, "--policy", policy_file, "--yes")
    assert real.exit_code == 0
    assert "Deleted 6 version rows and 6 transactions" in real.stdout
    assert "would delete" not in real.stdout


def test_without_a_terminal_a_real_run_needs_yes(
    history: sa.Engine, history_url: str, policy_file: Path
) -> None:
    before = snapshot(history)
    result = vestige(history_url, "--policy", policy_file)
    assert result.exit_code == 2
    assert result.stderr == f"error: {cli_prune.NEEDS_YES}\n"
    assert snapshot(history) == before


def test_on_a_terminal_a_real_run_asks_first(
    history: sa.Engine, history_url: str, policy_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_prune, "stdin_is_terminal", lambda: True)
    declined = vestige(history_url, "--policy", policy_file, input="n\n")
    assert declined.exit_code == ExitCode.DECLINED == 4
    assert cli_prune.DECLINED in declined.stderr
    assert package_versions(history) == 15
    accepted = vestige(history_url, "--policy", policy_file, input="y\n")
    assert accepted.exit_code == 0, accepted.output
    # the question says how much goes
    asked = cli_prune.CONFIRM.format(versions=6, transactions=6, url=history_url)
    assert asked in declined.stderr and asked in accepted.stderr
    assert f"Delete 6 version rows and 6 transactions from {history_url}?" in asked
    assert package_versions(history) == 9


@pytest.mark.parametrize(
    ("policy", "args", "message"),
    [
        ("keep_dayz = 3\n", [], "unknown key(s) in"),
        ("keep_days = 3\n[models.Pakage]\nkeep_days = 1\n", [], "unknown model(s)"),
        ("keep_days = -3\n", [], "keep_days must be a whole number >= 0, not -3"),
        ("keep_days = 'soon'\n", [], "keep_days must be a whole number >= 0, not 'soon'"),
        ("keep_days = 1.5\n", [], "not 1.5"),
        (POLICY, ["--batch-size", "0"], "--batch-size must be a whole number from 1 to"),
        (POLICY, ["--batch-size", "many"], "to 1,000,000,000, not 'many'"),
        (None, [], "cannot read policy file"),
        (POLICY, ["--models", "no_such_models"], "cannot import models module"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_touches_nothing(
    one_package: sa.Engine,
    history_url: str,
    tmp_path: Path,
    policy: str | None,
    args: list[str],
    message: str,
) -> None:
    path = tmp_path / "bad.toml"
    if policy is not None:
        path.write_text(policy)
    before = snapshot(one_package)
    result = vestige(history_url, "--policy", path, "--yes", *args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert message in result.stderr
    assert snapshot(one_package) == before


def test_a_database_not_migrated_exits_1_and_says_how_to_migrate(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, policy_file: Path
) -> None:
    if backend == "sqlite":
        (tmp_path / "empty.db").touch()
        url = f"sqlite:///{tmp_path / 'empty.db'}"
    else:
        server: sa.URL = request.getfixturevalue("postgres_database")
        url = server.update_query_dict(
            {"options": "-csearch_path=no_such_schema"}
        ).render_as_string(hide_password=False)
    result = vestige(url, "--policy", policy_file, "--yes")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: the database at ")
    assert "is not migrated" in result.stderr and "alembic upgrade head" in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_second_pruner_exits_3(history: sa.Engine, history_url: str, policy_file: Path) -> None:
    with pruner_lock(history):
        busy = vestige(history_url, "--policy", policy_file, "--yes", "--json")
    assert busy.exit_code == 3
    assert "another pruner is running" in busy.stderr
    assert json.loads(busy.stdout) == {"error": busy.stderr[7:-1], "exit_code": 3}
    assert package_versions(history) == 15
    assert vestige(history_url, "--policy", policy_file, "--yes").exit_code == 0
    assert package_versions(history) == 9


def test_policy_from_pyproject(
    history: sa.Engine, history_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = ROOT
    (tmp_path / "pyproject.toml").write_text(
        f'[tool.vestige]\nmodels = "models"\n\n[tool.vestige.retention]\n{POLICY}'
        "[tool.vestige.retention.models.Package]\nkeep_versions = 4\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(root))
    result = vestige(history_url, "--yes", "--json")
    assert result.exit_code == 0, result.output
    assert package_versions(history) == 12
