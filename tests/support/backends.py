"""The two databases every database test runs on, and resetting the PostgreSQL one.

A test (or fixture) parametrized with :data:`BACKEND_PARAMS` carries the ``sqlite`` or
``postgresql`` marker of its backend, as the ``backend`` fixture of ``conftest.py`` does.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

BACKENDS = ("sqlite", "postgresql")
BACKEND_PARAMS = [pytest.param(b, marks=getattr(pytest.mark, b)) for b in BACKENDS]


def reset_postgres_schema(url: sa.URL) -> None:
    """Give the database an empty ``public`` schema."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()
