"""What every ``vestige`` command shares: the project object, ``--models``, error handling.

Commands live in ``cli_<topic>.py`` modules that import from here; :mod:`vestige.cli`
assembles them into the ``vestige`` group.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import click
import sqlalchemy as sa

from vestige.config import Settings, render_url
from vestige.database import SERVER_HINT, database_hint, open_engine
from vestige.errors import DatabaseError, VestigeError, first_line
from vestige.registry import import_models


class ErrorTranslatingGroup(click.Group):
    """Turns Vestige's errors into one line and an exit code, once, for every command."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except VestigeError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except sa.exc.OperationalError as exc:
            project = ctx.find_object(Project)
            where = f" at {render_url(project.settings.database_url)}" if project else ""
            hint = database_hint(project.settings.database_url, exc) if project else SERVER_HINT
            click.echo(f"error: database error{where}: {first_line(exc)}; {hint}", err=True)
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
        engine = open_engine(self.settings.database_url)
        try:
            yield engine
        finally:
            engine.dispose()


pass_project = click.make_pass_decorator(Project)


#: ``--models MODULE``, for every command that needs the models.
models_option = click.option(
    "--models",
    "models_module",
    metavar="MODULE",
    default=None,
    help="Module that declares the versioned models (default: [tool.vestige] models).",
)
