"""Autogenerate on the reference project when the models dropped or renamed a column.
The database is given what older models had (``package.legacy`` with history in
``package_version.legacy``, ``homepage`` under an old name); autogenerate then proposes
the change, and Vestige decides what happens to the history.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

import models
from tests.support.project import ROOT
from tests.support.project import alembic_config as make_config
from vestige.migrations.autogenerate import DROPPED_NOTE, KEPT_NOTE, RENAME_NOTE
from vestige.migrations.check import check
from vestige.testing import fast_sqlite  # noqa: F401 (a fixture)

pytestmark = pytest.mark.usefixtures("fast_sqlite")


def _flat(text: str) -> str:
    return " ".join(text.replace("#", " ").split())


def _config(db_url: str, scripts: Path, on_drop_column: str | None = None) -> Config:
    config = make_config(db_url, script_location=scripts)
    if on_drop_column:
        config.cmd_opts = argparse.Namespace(x=[f"on_drop_column={on_drop_column}"])
    return config


def _version_columns(engine: sa.Engine) -> set[str]:
    return {column["name"] for column in sa.inspect(engine).get_columns("package_version")}


def test_dropped_column_keeps_history_unless_told(
    migrated_engine: sa.Engine, db_url: str, tmp_path: Path
) -> None:
    scripts = tmp_path / "migrations"
    shutil.copytree(ROOT / "migrations", scripts, ignore=shutil.ignore_patterns("__pycache__"))
    with migrated_engine.begin() as connection:
        for statement in (
            "ALTER TABLE package ADD COLUMN legacy VARCHAR(20)",
            "ALTER TABLE package_version ADD COLUMN legacy VARCHAR(20)",
            "ALTER TABLE package RENAME COLUMN homepage TO home_url",
        ):
            connection.execute(sa.text(statement))
    names = {"table": "package", "version_table": "package_version", "column": "legacy"}

    # on_drop_column=drop: the version column goes too; the downgrade brings it back
    dropping = command.revision(
        _config(db_url, scripts, "drop"), message="drop legacy", autogenerate=True
    )
    assert dropping is not None and not isinstance(dropping, list)
    text = _flat(Path(dropping.path).read_text())
    assert _flat(DROPPED_NOTE.format(**names)) in text
    assert (
        _flat(
            RENAME_NOTE.format(
                table="package", version_table="package_version", old="home_url", new="homepage"
            )
        )
        in text
    )
    command.upgrade(_config(db_url, scripts), "head")
    assert "legacy" not in _version_columns(migrated_engine)
    command.downgrade(_config(db_url, scripts), "-1")
    assert "legacy" in _version_columns(migrated_engine)
    Path(dropping.path).unlink()
    with migrated_engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO package_version (id, transaction_id, operation_type, name, legacy) "
                "VALUES (1, 1, 0, 'attrs', 'old value')"
            )
        )

    # the default keeps it, says so, and vestige check accepts the kept column
    keeping = command.revision(_config(db_url, scripts), message="drop legacy", autogenerate=True)
    assert keeping is not None and not isinstance(keeping, list)
    text = _flat(Path(keeping.path).read_text())
    assert _flat(KEPT_NOTE.format(**names)) in text
    assert _flat(DROPPED_NOTE.format(**names)) not in text
    command.upgrade(_config(db_url, scripts), "head")
    with migrated_engine.connect() as connection:
        assert connection.execute(sa.text("SELECT legacy FROM package_version")).all() == [
            ("old value",)
        ]
        columns = {column["name"] for column in sa.inspect(connection).get_columns("package")}
    assert "legacy" not in columns and "homepage" in columns
    report = check(_config(db_url, scripts), migrated_engine, models.Base.metadata)
    assert report.findings == []
