"""Alembic environment of the workshop: compares the database with ``models.Base.metadata``.

Importing ``models`` declares the models and calls ``configure_mappers()``, so the
metadata holds the ``*_version`` and ``transaction`` tables too. Without that call,
autogenerate would see those tables in the database, find no model for them, and
propose dropping them: the whole history gone in one revision. Vestige's
``process_revision_directives`` refuses to write such a revision.

A database at a revision that ``migrations/versions`` does not hold (another
exercise's) is refused with the command that starts over, not Alembic's bare
"Can't locate revision".
"""

from __future__ import annotations

from logging.config import fileConfig

import sqlalchemy as sa
from alembic import context
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from db import STALE_REVISION, URL

import models
from vestige.migrations import process_revision_directives

if context.config.config_file_name is not None:
    fileConfig(context.config.config_file_name)

target_metadata = models.Base.metadata


def run_migrations_online() -> None:
    engine = sa.create_engine(URL, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            # SQLite cannot ALTER most things: Alembic recreates the table instead.
            render_as_batch=connection.dialect.name == "sqlite",
            process_revision_directives=process_revision_directives,
        )
        known = {
            script.revision
            for script in ScriptDirectory.from_config(context.config).walk_revisions()
        }
        stale = [head for head in context.get_context().get_current_heads() if head not in known]
        if stale:
            raise CommandError(STALE_REVISION.format(revision=", ".join(stale)))
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("the workshop runs migrations online only: drop --sql")
run_migrations_online()
