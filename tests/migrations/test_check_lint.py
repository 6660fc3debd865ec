"""``vestige check --lint``: pending revisions rendered as SQL and linted for long locks."""

from __future__ import annotations

import shutil
from pathlib import Path

import sqlalchemy as sa

from tests.support.project import ROOT
from tests.support.project import alembic_config as make_config
from vestige.migrations.lint import VERSION_TABLE_NOTE, lint_pending

PENDING = '''"""risky for big tables"""
import sqlalchemy as sa
from alembic import op

revision = "risky0000001"
down_revision = "e4767685b210"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_package_version_summary", "package_version", ["summary"])
    op.add_column("package", sa.Column("downloads", sa.Integer(), nullable=False))


def downgrade() -> None:
    op.drop_column("package", "downloads")
    op.drop_index("ix_package_version_summary", table_name="package_version")
'''


def test_lint_flags_long_locks_in_pending_revisions(
    migrated_engine: sa.Engine, db_url: str, tmp_path: Path
) -> None:
    scripts = tmp_path / "migrations"
    shutil.copytree(ROOT / "migrations", scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / "risky0000001_risky.py").write_text(PENDING)

    findings = lint_pending(make_config(db_url, script_location=scripts), migrated_engine)

    if migrated_engine.dialect.name == "sqlite":
        assert findings is None  # the rules are PostgreSQL's
        return
    assert findings is not None
    by_rule = {(f.table, f.message.split(":")[0]): f for f in findings}
    assert set(by_rule) == {
        ("package_version", "require-concurrent-index-creation"),
        ("package", "adding-required-field"),
    }
    assert by_rule["package_version", "require-concurrent-index-creation"].message.endswith(
        VERSION_TABLE_NOTE
    )
    assert not by_rule["package", "adding-required-field"].message.endswith(VERSION_TABLE_NOTE)
    # nothing ran: the database is still at the initial revision, without the column
    columns = {column["name"] for column in sa.inspect(migrated_engine).get_columns("package")}
    assert "downloads" not in columns
