"""What every ``vestige`` command shares: the project object, ``--models``, error handling.

Commands live in ``cli_<topic>.py`` modules that import from here; :mod:`vestige.cli`
assembles them into the ``vestige`` group.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn

import click
import sqlalchemy as sa

from vestige.cli.output import echo_json
from vestige.config import Settings, render_url
from vestige.database import SERVER_HINT, database_hint, open_engine
from vestige.errors import DatabaseError, Declined, Interrupted, VestigeError, first_line
from vestige.registry import import_models

DECLINED = "declined at the prompt; nothing was changed"
INTERRUPTED = "interrupted; what was not yet committed was rolled back"
USAGE_ERROR = "{message} (see '{command} --help')"
NOT_MIGRATED = (
    "the database at {url} is not migrated to these models ({reason}); run `alembic "
    "upgrade head`, or `vestige check` to see what is missing"
)
DATABASE_FAILED = "database error at {url}: {reason}"
# SQLSTATEs of PostgreSQL's undefined_table and undefined_column
_UNDEFINED = frozenset({"42P01", "42703"})
_SQLITE_UNDEFINED = ("no such table: ", "no such column: ", " has no column named ")
_COMMAND_ARGS = "vestige.command_args"


def not_migrated(exc: sa.exc.DBAPIError) -> bool:
    """Whether the database refused a statement because a table or column is missing."""
    orig = exc.orig
    state = getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)
    if state is not None:
        return state in _UNDEFINED
    message = str(orig)
    return any(words in message for words in _SQLITE_UNDEFINED)


def database_error(exc: sa.exc.DBAPIError, url: str, consequence: str = "") -> VestigeError:
    """The one-line error for a statement the database refused.

    Args:
        exc: What the driver raised.
        url: The database URL, password hidden.
        consequence: Appended to the line, e.g. what is left as it was.
    """
    if not_migrated(exc):
        return DatabaseError(NOT_MIGRATED.format(url=url, reason=first_line(exc)))
    return DatabaseError(DATABASE_FAILED.format(url=url, reason=first_line(exc)) + consequence)


def one_line(text: str) -> str:
    """``text`` with line breaks shown as ``\\n``, so that an error stays on one line."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


class ErrorTranslatingGroup(click.Group):
    """Turns every error into one line and an exit code, once, for every command.

    Under ``--json`` the error is also printed on stdout as one JSON object,
    ``{"error": ..., "exit_code": ...}`` (plus the details the error carries).
    """

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        # a copy: parsing the command's options consumes the list
        ctx.meta[_COMMAND_ARGS] = (name, command, list(rest))
        return name, command, rest

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except VestigeError as exc:
            self._fail(ctx, str(exc), exc.exit_code, exc.json_details())
        except click.Abort:
            # click's prompts raise Abort on "no" (abort=True), Ctrl-C and end of input
            self._fail(ctx, DECLINED, Declined.exit_code)
        except KeyboardInterrupt:
            self._fail(ctx, INTERRUPTED, Interrupted.exit_code)
        except click.UsageError as exc:
            command = exc.ctx.command_path if exc.ctx else ctx.command_path
            message = USAGE_ERROR.format(message=exc.format_message(), command=command)
            self._fail(ctx, message, exc.exit_code)
        except sa.exc.DBAPIError as exc:
            self._fail(ctx, self._database_message(ctx, exc), DatabaseError.exit_code)

    @staticmethod
    def _database_message(ctx: click.Context, exc: sa.exc.DBAPIError) -> str:
        project = ctx.find_object(Project)
        if isinstance(exc, sa.exc.OperationalError) and not not_migrated(exc):
            where = f" at {render_url(project.settings.database_url)}" if project else ""
            hint = database_hint(project.settings.database_url, exc) if project else SERVER_HINT
            return f"database error{where}: {first_line(exc)}; {hint}"
        return str(database_error(exc, project.settings.safe_url if project else "DATABASE_URL"))

    def _fail(
        self, ctx: click.Context, message: str, code: int, details: dict[str, Any] | None = None
    ) -> NoReturn:
        line = one_line(message)
        if self._wants_json(ctx):
            error = {"error": line, "exit_code": int(code), **(details or {})}
            echo_json(error, indent=None)
        click.echo(f"error: {line}", err=True)
        ctx.exit(code)

    @staticmethod
    def _wants_json(ctx: click.Context) -> bool:
        """Whether the command line asked for ``--json`` (parsed again, leniently)."""
        name, command, args = ctx.meta.get(_COMMAND_ARGS, (None, None, []))
        if command is None or name is None:
            return False
        try:
            probe = command.make_context(name, list(args), parent=ctx, resilient_parsing=True)
        except click.ClickException:
            return False
        return bool(probe.params.get("as_json"))


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
    envvar="VESTIGE_MODELS",
    help="Module that declares the versioned models (default: VESTIGE_MODELS, else "
    "[tool.vestige] models).",
)
