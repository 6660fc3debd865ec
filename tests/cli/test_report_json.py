"""One JSON shape for each report: ``to_dict()`` in Python is what ``--json`` prints."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.orm import Session

import models
from tests.support.project import ROOT, alembic_config
from vestige.cli import app
from vestige.config import load_settings
from vestige.migrations.check import check, models_metadata
from vestige.retention import load_policy, prune
from vestige.versioning import actor


def _invoke(db_url: str, *args: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, list(args), env={"DATABASE_URL": db_url})
    assert result.exit_code == 0, result.output
    printed: dict[str, Any] = json.loads(result.stdout)
    return printed


def test_prune_json_is_the_reports_to_dict(migrated_engine: sa.Engine, db_url: str) -> None:
    with Session(migrated_engine) as session, actor(remote_addr="192.0.2.1"):
        package = models.Package(name="httpkit", summary="one")
        session.add(package)
        session.commit()
        for summary in ("two", "three"):
            package.summary = summary
            session.commit()
    policy = load_policy(load_settings(ROOT / "pyproject.toml").raw)
    report = prune(migrated_engine, policy, dry_run=True).to_dict()
    printed = _invoke(db_url, "prune", "--dry-run", "--json")
    assert printed.pop("seconds") >= 0
    report.pop("seconds")
    assert printed == report
    assert "transactions_would_delete" in printed


def test_check_json_is_the_reports_to_dict(migrated_engine: sa.Engine, db_url: str) -> None:
    report = check(alembic_config(db_url), migrated_engine, models_metadata())
    printed = _invoke(db_url, "check", "--json")
    assert printed == report.to_dict()
    assert printed["ok"] is True
    assert "lint" not in printed
