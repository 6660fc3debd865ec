"""The project's own migration history, tested with the vestige.testing plugin.

The fixtures and tests are imported from :mod:`vestige.testing`, as a user would; the
two fixtures every user provides point them at this run's database.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.config import Config
from pytest_alembic import Config as PytestAlembicConfig
from pytest_alembic import runner

import models
from tests.support.backends import reset_postgres_schema
from tests.support.project import ROOT
from tests.support.project import alembic_config as make_config
from vestige.migrations.probe import LOST_ROWS, UNVERSIONABLE
from vestige.testing import (  # noqa: F401 (fixtures and tests, collected here)
    alembic_runner,
    fast_sqlite,
    test_up_down_up_keeps_rows,
    test_versioning_works_at_every_step,
    test_vestige_check_at_head,
    vestige_metadata,
    vestige_row_values,
    vestige_settings,
)

pytestmark = pytest.mark.usefixtures("fast_sqlite")


@pytest.fixture
def alembic_engine(engine: sa.Engine) -> sa.Engine:
    return engine


@pytest.fixture
def alembic_config(db_url: str) -> Config:
    return make_config(db_url)


BAD_REVISION = '''"""a column its version table lacks, and a downgrade that loses rows"""
import sqlalchemy as sa
from alembic import op

revision = "bad000000001"
down_revision = "cfb1554cb576"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("package", sa.Column("flag", sa.String(10), nullable=True))


def downgrade() -> None:
    op.execute("DELETE FROM release_version")
    with op.batch_alter_table("package") as batch:
        batch.drop_column("flag")
'''


def test_plugin_catches_unversionable_column_and_lost_rows(
    engine: sa.Engine, db_url: str, tmp_path: Path
) -> None:
    scripts = tmp_path / "migrations"
    shutil.copytree(ROOT / "migrations", scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / "bad000000001_bad.py").write_text(BAD_REVISION)
    config = PytestAlembicConfig.from_raw_config(make_config(db_url, script_location=scripts))

    with runner(config, engine) as context, pytest.raises(AssertionError) as failure:
        test_versioning_works_at_every_step(context, engine, models.Base.metadata, {})
    assert str(failure.value).splitlines()[0] == UNVERSIONABLE.format(
        revision="bad000000001", table="package", version_table="package_version", columns="flag"
    )

    engine.dispose()
    if engine.dialect.name == "postgresql":
        reset_postgres_schema(engine.url)
    else:
        Path(str(engine.url.database)).unlink()
    with runner(config, engine) as context, pytest.raises(AssertionError) as failure:
        test_up_down_up_keeps_rows(context, engine, {})
    lost = LOST_ROWS.format(
        revision="bad000000001", step="downgrade", table="release_version", rows=""
    )
    assert re.fullmatch(re.escape(lost) + r"\[\(\d+, \d+\)\]", str(failure.value))
