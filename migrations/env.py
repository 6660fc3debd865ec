"""Alembic environment: the one place that ties the models to Alembic.

The database URL comes from, in order: a connection handed over in
``config.attributes["connection"]`` (tests), ``sqlalchemy.url`` set on the config,
``DATABASE_URL``, ``[tool.vestige] database_url``, and finally ``vestige.db`` (SQLite)
in the project directory: ``load_settings`` resolves all but the first, as the
``vestige`` command does. The settings are loaded once, here, and handed on.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import context

import models
from vestige.config import load_settings
from vestige.migrations import check_version_tables, comparison_options

config = context.config
target_metadata = models.Base.metadata

if config.cmd_opts is not None:
    # Run from the alembic command line: show what it does, as alembic.ini's loggers would.
    logging.basicConfig(format="%(levelname)-5.5s [%(name)s] %(message)s")
    logging.getLogger("alembic").setLevel(logging.INFO)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)

# Before anything runs: a metadata without its version tables would make autogenerate
# propose dropping them (see vestige.migrations).
check_version_tables(target_metadata)

_explicit_url = None
if config.file_config.has_section(config.config_ini_section):
    _explicit_url = config.get_main_option("sqlalchemy.url")
settings = load_settings(database_url=_explicit_url)


def _configure(connection: sa.Connection | None = None, url: str | None = None) -> None:
    if connection is not None:
        dialect = connection.dialect.name
    else:
        dialect = sa.make_url(url or "").get_backend_name()
    context.configure(
        connection=connection,
        url=url,
        target_metadata=target_metadata,
        render_as_batch=dialect == "sqlite",
        literal_binds=connection is None,
        # compare_type, the guard again on autogenerate, kept history columns
        # (on_drop_column), native triggers: see vestige.migrations.comparison_options
        **comparison_options(target_metadata, settings),
    )


def run_migrations_offline() -> None:
    _configure(url=settings.database_url)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if isinstance(connection, sa.Connection):
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    # an Engine handed over (pytest-alembic, vestige.testing) is the caller's to dispose
    handed = isinstance(connection, sa.Engine)
    engine = (
        connection
        if handed
        else sa.create_engine(settings.database_url, poolclass=sa.pool.NullPool)
    )
    with engine.connect() as connection:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
    if not handed:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
