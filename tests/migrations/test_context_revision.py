"""The revision that adds transaction.context: up, down, up, and what check says without it."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from click.testing import CliRunner
from sqlalchemy.orm import Session

import models
import vestige
from tests.support.project import alembic_config
from vestige.cli import app
from vestige.history import history

INITIAL, CONTEXT = "cfb1554cb576", "e4767685b210"


def _check(db_url: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["check"], env={"DATABASE_URL": db_url})
    return result.exit_code, result.output


def _columns(engine: sa.Engine) -> set[str]:
    return {column["name"] for column in sa.inspect(engine).get_columns("transaction")}


def test_context_revision_adds_the_column_and_check_asks_for_it(
    engine: sa.Engine, db_url: str
) -> None:
    config = alembic_config(db_url)
    command.upgrade(config, INITIAL)
    assert "context" not in _columns(engine)
    code, output = _check(db_url)
    assert code == 1
    assert f"the database is at {INITIAL}, the head is {CONTEXT}" in output

    command.upgrade(config, CONTEXT)
    command.downgrade(config, INITIAL)
    assert "context" not in _columns(engine)
    command.upgrade(config, "head")
    assert "context" in _columns(engine)
    assert _check(db_url)[0] == 0

    with vestige.context(request_id="after-upgrade", attempt=1), Session(engine) as session:
        package = models.Package(name="migrated")
        session.add(package)
        session.commit()
        (version,) = history(session, models.Package, package.id)
    assert version.context == {"request_id": "after-upgrade", "attempt": 1}
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            kind = conn.scalar(
                sa.text(
                    "SELECT data_type FROM information_schema.columns "
                    "WHERE table_name = 'transaction' AND column_name = 'context'"
                )
            )
        assert kind == "jsonb"


def test_check_names_the_missing_context_column(engine: sa.Engine, db_url: str) -> None:
    config = alembic_config(db_url)
    command.upgrade(config, INITIAL)
    command.stamp(config, "head")  # claims head without the column
    code, output = _check(db_url)
    assert code == 1
    assert "transaction" in output
    assert "context" in output
