"""``vestige prune --archive``, ``vestige archive verify|ls``, ``vestige history|restore
--archive``, in-process (CliRunner), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from sqlalchemy.orm import Session

import models
from tests.support.archive_data import POLICY, write_archivable_history
from tests.support.retention_data import (
    history_engine,
    history_url,
    postgres_history_url,
    sqlite_history_template,
)
from vestige.archive import MANIFEST
from vestige.cli import app
from vestige.config import ARCHIVE_URL_ENV
from vestige.errors import ExitCode
from vestige.history import history
from vestige.retention import prune

# fixtures, imported to be found
__all__ = ["history_engine", "history_url", "postgres_history_url", "sqlite_history_template"]

POLICY_TOML = "keep_days = 200\nkeep_versions = 2\ndeleted_keep_days = 90\n"


@pytest.fixture
def written(history_engine: sa.Engine) -> sa.Engine:
    write_archivable_history(history_engine)
    return history_engine


def vestige(url: str, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(
        app, list(args), env={"DATABASE_URL": url, **(env or {})}, terminal_width=200
    )


def package_id(engine: sa.Engine, name: str = "a") -> int:
    with Session(engine) as session:
        found = session.scalar(sa.select(models.Package.id).where(models.Package.name == name))
        assert found is not None
        return found


def test_prune_archive_says_what_it_archived_and_a_dry_run_what_it_would(
    written: sa.Engine, history_url: str, tmp_path: Path
) -> None:
    policy = tmp_path / "retention.toml"
    policy.write_text(POLICY_TOML)
    archive = str(tmp_path / "archive")
    common = ["prune", "--policy", str(policy), "--archive", archive, "--models", "models"]

    dry = vestige(history_url, *common, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert f"Dry run: would archive every row above to {archive} before deleting it." in dry.stdout
    assert not (tmp_path / "archive" / MANIFEST).exists()

    done = vestige(history_url, *common, "--yes", "--json")
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    deleted = sum(table["deleted"] for table in report["tables"])
    assert deleted > 0 and report["archive"]["url"] == archive
    assert report["archive"]["rows"] > deleted + report["transactions_deleted"]


def test_history_with_archive_prints_what_it_printed_before_pruning(
    written: sa.Engine, history_url: str, tmp_path: Path
) -> None:
    key = str(package_id(written))
    before = vestige(history_url, "history", "Package", key, "--json", "--models", "models")
    archive = str(tmp_path / "archive")
    prune(written, POLICY, archive=archive)

    pruned = vestige(history_url, "history", "Package", key, "--json", "--models", "models")
    read = vestige(
        history_url, "history", "Package", key, "--json", "--archive", archive, "--models", "models"
    )
    from_env = vestige(
        history_url,
        *("history", "Package", key, "--json", "--models", "models"),
        env={ARCHIVE_URL_ENV: archive},
    )
    assert before.exit_code == read.exit_code == from_env.exit_code == 0, read.output
    assert json.loads(pruned.stdout) != json.loads(before.stdout)
    assert json.loads(read.stdout) == json.loads(before.stdout)
    assert json.loads(from_env.stdout) == json.loads(before.stdout)


def test_restore_to_an_archived_version(
    written: sa.Engine, history_url: str, tmp_path: Path
) -> None:
    record = package_id(written)
    with Session(written) as session:
        first = history(session, models.Package, record)[0]
    archive = str(tmp_path / "archive")
    prune(written, POLICY, archive=archive)
    args = ["restore", "Package", str(record), "--to", str(first.transaction_id)]

    refused = vestige(history_url, *args, "--yes", "--models", "models")
    assert refused.exit_code == ExitCode.FAILED  # pruned, without the archive
    done = vestige(history_url, *args, "--yes", "--archive", archive, "--models", "models")

    assert done.exit_code == 0, done.output
    with Session(written) as session:
        live = session.get_one(models.Package, record)
        assert live.summary == first.values["summary"] == "v0"
        newest = history(session, models.Package, record, archive=archive)[-1]
        assert newest.values["summary"] == "v0" and newest.transaction_id > first.transaction_id


def _archive(written: sa.Engine, tmp_path: Path) -> tuple[Path, list[dict[str, Any]]]:
    archive = tmp_path / "archive"
    prune(written, POLICY, archive=str(archive), batch_size=3)
    entries = json.loads((archive / MANIFEST).read_text())["files"]
    return archive, entries


def test_archive_verify_passes_then_names_a_changed_missing_or_unlisted_file(
    written: sa.Engine, history_url: str, tmp_path: Path
) -> None:
    archive, entries = _archive(written, tmp_path)
    ok = vestige(history_url, "archive", "verify", str(archive))
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.startswith(f"OK: {len(entries):,} files, ")

    changed = archive / entries[0]["path"]
    changed.write_bytes(changed.read_bytes()[:-8] + b"\0" * 8)
    (archive / entries[1]["path"]).unlink()
    stray = archive / entries[2]["path"].replace(".parquet", "-copy.parquet")
    stray.write_bytes((archive / entries[2]["path"]).read_bytes())

    failed = vestige(history_url, "archive", "verify", str(archive))
    assert failed.exit_code == ExitCode.FAILED
    last = failed.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and entries[0]["path"] in last
    assert "SHA-256 differs" in last and "2 more problem(s)" in last
    assert f"{entries[1]['path']}: missing" in failed.stderr
    assert "-copy.parquet: not in the manifest" in failed.stderr
    report = json.loads(vestige(history_url, "archive", "verify", str(archive), "--json").stdout)
    assert report["ok"] is False and len(report["problems"]) == 3


def test_archive_ls_lists_tables_months_rows_and_bytes(
    written: sa.Engine, history_url: str, tmp_path: Path
) -> None:
    archive, entries = _archive(written, tmp_path)
    listed = vestige(history_url, "archive", "ls", str(archive), "--json")
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert {(row["table"], row["month"]) for row in rows} == {
        (entry["table"], entry["month"]) for entry in entries
    }
    assert sum(row["rows"] for row in rows) == sum(entry["rows"] for entry in entries)
    assert sum(row["bytes"] for row in rows) == sum(
        (archive / entry["path"]).stat().st_size for entry in entries
    )
    table = vestige(history_url, "archive", "ls", str(archive))
    assert "package_version" in table.stdout and "total" in table.stdout


def test_archive_commands_on_a_bad_url_say_so_in_one_line(history_url: str) -> None:
    for command in ("verify", "ls"):
        result = vestige(history_url, "archive", command, "nosuchprotocol://x")
        assert result.exit_code == ExitCode.FAILED
        [line] = result.stderr.strip().splitlines()
        assert line.startswith("error: cannot open archive nosuchprotocol://x")
