"""The ``vestige`` command line: thin commands over the library.

Each command parses its options, calls one library function and prints what it
returns. Errors raised on purpose (:class:`~vestige.errors.VestigeError`) become one
line on stderr and the error's exit code; a database that cannot be reached becomes
exit code 1 with the URL shown without its password.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import click
import sqlalchemy as sa

from vestige import __version__
from vestige.config import Settings, load_settings, render_url
from vestige.errors import DatabaseError, VestigeError
from vestige.registry import import_models


class _Group(click.Group):
    """Turns Vestige's errors into one line and an exit code, once, for every command."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except VestigeError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except sa.exc.OperationalError as exc:
            url = ctx.find_object(Project)
            where = f" at {render_url(url.settings.database_url)}" if url else ""
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            click.echo(
                f"error: database error{where}: {reason}; check DATABASE_URL and that the "
                "server is running",
                err=True,
            )
            ctx.exit(DatabaseError.exit_code)


@dataclass
class Project:
    """What every command gets: the settings and, on demand, the models and an engine."""

    settings: Settings

    def load_models(self, module: str | None = None) -> None:
        """Import the models module (``--models`` wins over the settings)."""
        import_models(module or self.settings.models, self.settings.project_root)

    @contextmanager
    def engine(self) -> Iterator[sa.Engine]:
        engine = sa.create_engine(self.settings.database_url)
        try:
            yield engine
        finally:
            engine.dispose()


pass_project = click.make_pass_decorator(Project)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vestige")
@click.pass_context
def app(ctx: click.Context) -> None:
    """Record history for SQLAlchemy: read it, migrate it, prune it.

    The database comes from DATABASE_URL, else [tool.vestige] database_url in
    pyproject.toml, else vestige.db (SQLite) in the project directory.

    \b
    Example:
        DATABASE_URL=postgresql+psycopg2://postgres@localhost/app vestige --help
    """
    try:
        settings = load_settings()
    except VestigeError as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(exc.exit_code)
    ctx.obj = Project(settings)


models_option = click.option(
    "--models",
    "models_module",
    metavar="MODULE",
    default=None,
    help="Module that declares the versioned models (default: [tool.vestige] models).",
)
"""Shared by every command that needs the models: ``@models_option``."""

from vestige import cli_history  # noqa: E402

app.add_command(cli_history.history_command)
app.add_command(cli_history.restore_command)

from vestige.cli_check import check  # noqa: E402

app.add_command(check)

from vestige.cli_prune import prune  # noqa: E402

app.add_command(prune)
