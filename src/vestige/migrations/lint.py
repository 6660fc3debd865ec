"""``vestige check --lint``: pending revisions that would lock big tables for long.

The pending revisions are rendered as PostgreSQL SQL (``alembic upgrade --sql``, env.py's
offline mode) and handed to `squawk <https://squawkhq.com>`_ (``squawk-cli`` on PyPI), a
maintained PostgreSQL migration linter. Of its rules only those about long locks are
kept (an index built without ``CONCURRENTLY``, a ``NOT NULL`` column without default, a
type change that rewrites the table, ...); the others (timeouts, ``IF NOT EXISTS``,
bigint over int) are advice about style, not about history. Version tables are large
and only ever grow, so a finding on one says so.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext

from vestige.errors import ConfigError
from vestige.migrations.check import Finding

__all__ = ["LOCK_RULES", "lint_pending", "lint_sql"]

LOCK_RULES = frozenset(
    {
        "require-concurrent-index-creation",
        "require-concurrent-index-deletion",
        "adding-required-field",
        "adding-not-nullable-field",
        "adding-field-with-default",
        "changing-column-type",
        "constraint-missing-not-valid",
        "adding-foreign-key-constraint",
        "disallowed-unique-constraint",
        "adding-primary-key-constraint",
    }
)
LOCK_KIND = "lock-risk"
VERSION_TABLE_NOTE = " (a version table: large and append-only, so the lock lasts long)"
NO_SQUAWK = "squawk is not installed: pip install 'vestige[lint]' (squawk-cli), then retry"
_TABLE = re.compile(
    r"\b(?:ON|TABLE|INTO)\s+(?:ONLY\s+)?(?:IF\s+(?:NOT\s+)?EXISTS\s+)?\"?([\w.]+)\"?",
    re.IGNORECASE,
)


def _squawk() -> str:
    beside = Path(sys.executable).parent / "squawk"
    found = str(beside) if beside.is_file() else shutil.which("squawk")
    if found is None:
        raise ConfigError(NO_SQUAWK)
    return found


def lint_sql(sql: str, version_suffix: str = "_version") -> list[Finding]:
    """Lint PostgreSQL migration SQL for long locks.

    Args:
        sql: The SQL of the migrations, as ``alembic upgrade --sql`` prints it.
        version_suffix: How version table names end.

    Returns:
        One finding per statement and lock rule squawk reports.
    """
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "pending.sql"
        path.write_text(sql, encoding="utf-8")
        result = subprocess.run(
            [_squawk(), "--reporter", "json", "--assume-in-transaction", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
    if result.returncode not in (0, 1):
        raise ConfigError(f"squawk failed: {result.stderr.strip() or result.stdout.strip()}")
    lines = sql.splitlines()
    findings = []
    for item in json.loads(result.stdout or "[]"):
        if item.get("rule_name") not in LOCK_RULES:
            continue
        statement = _statement(sql, lines, item)
        match = _TABLE.search(statement)
        table = match.group(1) if match else "?"
        note = VERSION_TABLE_NOTE if table.endswith(version_suffix) else ""
        findings.append(
            Finding(
                kind=LOCK_KIND,
                table=table,
                message=f"{item['rule_name']}: {item['message'].rstrip('.')}{note}",
                fix=str(item.get("help") or "see https://squawkhq.com/docs/" + item["rule_name"]),
            )
        )
    return findings


def _statement(sql: str, lines: list[str], item: dict[str, Any]) -> str:
    """The whole statement around the position squawk reports (0-based line and column)."""
    line = min(int(item["line"]), len(lines))
    offset = sum(len(text) + 1 for text in lines[:line]) + int(item["column"])
    begin = sql.rfind(";", 0, offset) + 1
    finish = sql.find(";", offset)
    return sql[begin : finish if finish >= 0 else len(sql)]


def lint_pending(config: Config, engine: sa.Engine) -> list[Finding] | None:
    """Lint the revisions between the database's revision and head.

    Returns:
        The findings (empty when nothing is pending or nothing is risky), or ``None`` when
        the database is not PostgreSQL (the rules are PostgreSQL's).
    """
    if engine.dialect.name != "postgresql":
        return None
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_heads()
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(config).get_heads()
    if set(current) == set(heads):
        return []
    buffer = io.StringIO()
    config.output_buffer = buffer
    config.stdout = io.StringIO()
    span = f"{current[0]}:head" if len(current) == 1 else "head"
    command.upgrade(config, span, sql=True)
    return lint_sql(buffer.getvalue())
