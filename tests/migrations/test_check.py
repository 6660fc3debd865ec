"""``vestige check`` on the reference project: passes at head, one useful line per drift."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from click.testing import CliRunner

import models
from tests.support.project import ROOT
from tests.support.project import alembic_config as make_config
from vestige.cli import app
from vestige.cli.check import LINT_NOTHING, LINT_SKIPPED, OK_LINE
from vestige.migrations.check import MESSAGES, check
from vestige.testing import fast_sqlite  # noqa: F401 (a fixture)

pytestmark = pytest.mark.usefixtures("fast_sqlite")

HEAD = "e4767685b210"
AUTOGENERATE_FIX = MESSAGES["missing-version-table"][1]


def _vestige(db_url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["check", *args], env={"DATABASE_URL": db_url})
    return result.exit_code, result.output


def _lines(db_url: str) -> list[str]:
    report = check(make_config(db_url), sa.create_engine(db_url), models.Base.metadata)
    return [finding.line() for finding in report.findings]


def _ddl(engine: sa.Engine, *statements: str) -> None:
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(sa.text(statement))


@pytest.fixture
def at_head(schema_engine: sa.Engine, db_url: str) -> sa.Engine:
    """A database with the models' schema, stamped at head (quicker than upgrading)."""
    command.stamp(make_config(db_url), "head")
    return schema_engine


def test_check_passes_at_head_and_lints(migrated_engine: sa.Engine, db_url: str) -> None:
    code, output = _vestige(db_url, "--lint")
    lint = (
        LINT_SKIPPED.format(dialect="sqlite")
        if migrated_engine.dialect.name == "sqlite"
        else LINT_NOTHING
    )
    ok = OK_LINE.format(heads=HEAD, version_tables=5, native="")
    assert (code, output) == (0, f"{lint}\n{ok}\n")


def test_check_fails_before_upgrade(engine: sa.Engine, db_url: str) -> None:
    engine.connect().close()  # an empty database (on SQLite, a file must exist)
    code, output = _vestige(db_url)
    assert code == 1
    assert output == (
        f"alembic_version: the database is at base (empty), the head is {HEAD}; "
        "fix: alembic upgrade head\n"
    )


def test_check_json_reports_each_finding(at_head: sa.Engine, db_url: str) -> None:
    _ddl(at_head, "DROP TABLE license_version")
    code, output = _vestige(db_url, "--json")
    assert code == 1
    data = json.loads(output)
    assert data["ok"] is False
    assert data["findings"] == [
        {
            "kind": "missing-version-table",
            "table": "license_version",
            "message": "version table of License is missing: its changes are not recorded",
            "fix": AUTOGENERATE_FIX,
        }
    ]


def test_check_finds_missing_or_mistyped_version_column_and_plugin_table(
    at_head: sa.Engine, db_url: str
) -> None:
    _ddl(
        at_head,
        "ALTER TABLE package_version DROP COLUMN summary",
        "DROP TABLE transaction_changes",
    )
    expected = [
        "package_version: column summary of package is missing: versions cannot record it; "
        f"fix: {AUTOGENERATE_FIX}",
        "transaction_changes: the TransactionChangesPlugin plugin's table is missing; "
        f"fix: {AUTOGENERATE_FIX}",
    ]
    if at_head.dialect.name == "postgresql":  # SQLite cannot change a column's type in place
        _ddl(at_head, "ALTER TABLE release_version ALTER COLUMN version TYPE INTEGER USING NULL")
        expected.insert(
            1,
            "release_version: column version is INTEGER, the models say VARCHAR(64); "
            f"fix: {AUTOGENERATE_FIX}",
        )
    assert sorted(_lines(db_url)) == expected


def test_check_accepts_kept_history_but_not_a_required_extra_column(
    at_head: sa.Engine, db_url: str
) -> None:
    # a column dropped from the model whose history was kept: nullable, accepted
    _ddl(at_head, "ALTER TABLE package_version ADD COLUMN legacy VARCHAR(20)")
    assert _lines(db_url) == []
    # a NOT NULL column the models do not know would break every version insert
    _ddl(
        at_head,
        "ALTER TABLE release_version ADD COLUMN stray VARCHAR(5) DEFAULT 'x' NOT NULL",
    )
    assert _lines(db_url) == [
        "release_version: the models differ from the database: remove column stray; "
        f"fix: {AUTOGENERATE_FIX}"
    ]


def test_check_finds_two_heads(at_head: sa.Engine, db_url: str, tmp_path: Path) -> None:
    scripts = tmp_path / "migrations"
    shutil.copytree(ROOT / "migrations", scripts, ignore=shutil.ignore_patterns("__pycache__"))
    for revision in ("aaaa00000001", "bbbb00000002"):
        (scripts / "versions" / f"{revision}_branch.py").write_text(
            f"revision = {revision!r}\ndown_revision = {HEAD!r}\n"
            "branch_labels = None\ndepends_on = None\n\n\n"
            "def upgrade() -> None:\n    pass\n\n\ndef downgrade() -> None:\n    pass\n"
        )
    config = make_config(db_url, script_location=scripts)
    report = check(config, at_head, models.Base.metadata)
    assert [finding.line() for finding in report.findings] == [
        "alembic_version: the revision history has 2 heads (aaaa00000001, bbbb00000002); "
        "fix: alembic merge -m 'merge heads' heads, then alembic upgrade head"
    ]


def test_check_bad_input_exits_2(tmp_path: Path) -> None:
    code, output = _vestige(f"sqlite:///{tmp_path / 'x.db'}", "--models", "no_such_models_module")
    assert code == 2
    assert output.startswith("error: cannot import models module 'no_such_models_module'")
