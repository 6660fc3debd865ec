"""``history_stats`` and ``vestige stats`` on SQLite and PostgreSQL, against counts made here."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

import models
from tests.support.archive_data import POLICY, write_archivable_history
from tests.support.retention_data import (
    history_engine,
    history_url,
    postgres_history_url,
    sqlite_history_template,
)
from vestige.cli import app
from vestige.errors import ExitCode
from vestige.retention import prune
from vestige.retention.stats import NO_DBSTAT, daily_versions, history_stats

# fixtures, imported to be found
__all__ = ["history_engine", "history_url", "postgres_history_url", "sqlite_history_template"]

PACKAGE_VERSION = models.PackageVersion.__table__
TX = models.Transaction.__table__


@pytest.fixture
def written(history_engine: sa.Engine) -> sa.Engine:
    write_archivable_history(history_engine)
    return history_engine


def test_the_figures_of_a_version_table_are_the_counts(written: sa.Engine) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    with written.connect() as conn:
        rows = conn.execute(
            sa.select(PACKAGE_VERSION.c.id, TX.c.issued_at).join(
                TX, TX.c.id == PACKAGE_VERSION.c.transaction_id
            )
        ).all()
        live = conn.execute(sa.select(sa.func.count()).select_from(models.Package.__table__))
        live_count = live.scalar_one()
    per_record = Counter(record for record, _ in rows)
    dry = prune(written, POLICY, dry_run=True, now=now)

    found = history_stats(written, POLICY, now=now)

    [package] = [table for table in found.tables if table.table == "package_version"]
    assert package.model == "Package" and package.live_records == live_count == 3
    assert package.version_rows == len(rows) and package.records == len(per_record) == 4
    assert package.median_versions == statistics.median(per_record.values())
    assert package.p99_versions == max(per_record.values())
    assert [count for _, count in package.top] == sorted(per_record.values(), reverse=True)
    assert dict(package.top) == {(record,): count for record, count in per_record.items()}
    recent = sum(1 for _, issued in rows if issued >= now - timedelta(days=30))
    assert package.per_day_30 == round(recent / 30, 2) and recent > 0
    year = sum(1 for _, issued in rows if issued >= now - timedelta(days=365))
    assert package.per_day_365 == round(year / 365, 2)
    assert {t.table: t.would_prune for t in found.tables} == {
        t.table: t.deleted for t in dry.tables
    }
    assert found.would_prune_transactions == dry.transactions_deleted
    if written.dialect.name == "postgresql" or found.size_note is None:
        assert package.bytes is not None and package.bytes >= 8192
    else:
        assert found.size_note == NO_DBSTAT and package.bytes is None
    assert found.archive_url is None and package.archived_rows is None


def test_with_an_archive_the_rows_and_size_of_what_is_archived(
    written: sa.Engine, tmp_path: Path
) -> None:
    archive = str(tmp_path / "archive")
    report = prune(written, POLICY, archive=archive)
    found = history_stats(written, POLICY, archive=archive)
    assert {t.table: t.archived_rows for t in found.tables} == {
        t.table: t.deleted for t in report.tables
    }
    assert report.archive is not None and found.archive_bytes == report.archive.bytes > 0


def test_daily_versions_add_up_to_the_version_rows(written: sa.Engine) -> None:
    series = daily_versions(written, POLICY)
    found = history_stats(written, POLICY)
    for table in found.tables:
        days = series[table.table]
        assert sum(count for _, count in days) == table.version_rows
        assert [day for day, _ in days] == sorted({day for day, _ in days})


def test_the_command_prints_a_table_json_and_a_chart(
    written: sa.Engine, history_url: str, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": history_url}
    runner = CliRunner()
    text = runner.invoke(app, ["stats", "--models", "models"], env=env, terminal_width=200)
    assert text.exit_code == 0, text.output
    assert "package_version" in text.stdout and "would prune" in text.stdout
    as_json = runner.invoke(app, ["stats", "--json", "--models", "models"], env=env)
    data = json.loads(as_json.stdout)
    assert {table["table"] for table in data["tables"]} >= {"package_version", "release_version"}
    for name, magic in (("growth.png", b"\x89PNG"), ("growth.svg", b"<?xml")):
        chart = tmp_path / name
        done = runner.invoke(app, ["stats", "--chart", str(chart), "--models", "models"], env=env)
        assert done.exit_code == 0, done.output
        assert chart.read_bytes().startswith(magic)
    bad = runner.invoke(app, ["stats", "--chart", str(tmp_path / "growth.gif")], env=env)
    assert bad.exit_code == ExitCode.BAD_INPUT
    assert "PNG or SVG" in bad.stderr and not (tmp_path / "growth.gif").exists()
