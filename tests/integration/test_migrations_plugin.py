"""The project's own migration history, tested with the vestige.testing plugin.

The fixtures and tests are imported from :mod:`vestige.testing`, as a user would; the
two fixtures every user provides point them at this run's database.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.config import Config

from tests.conftest import alembic_config as make_config
from vestige.testing import (  # noqa: F401 (fixtures and tests, collected here)
    alembic_runner,
    test_model_definitions_match_ddl,
    test_up_down_up_keeps_rows,
    test_versioning_works_at_every_step,
    test_vestige_check_at_head,
    vestige_metadata,
    vestige_row_values,
)


@pytest.fixture
def alembic_engine(engine: sa.Engine) -> sa.Engine:
    return engine


@pytest.fixture
def alembic_config(db_url: str) -> Config:
    return make_config(db_url)
