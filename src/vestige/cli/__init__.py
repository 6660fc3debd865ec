"""The ``vestige`` command line: thin commands over the library.

Each command parses its options, calls one library function and prints what it
returns. Errors raised on purpose (:class:`~vestige.errors.VestigeError`), usage errors,
database errors and interruptions become one line on stderr (and one JSON object on
stdout under ``--json``) and an exit code of :class:`~vestige.errors.ExitCode`; the
database URL is shown without its password (see :mod:`vestige.cli.support`).
"""

from __future__ import annotations

import click

from vestige import __version__
from vestige.cli.archive import archive as archive_command
from vestige.cli.check import check as check_command
from vestige.cli.history import history_command, restore_command
from vestige.cli.init import init as init_command
from vestige.cli.prune import prune as prune_command
from vestige.cli.serve import serve_command
from vestige.cli.stats import stats as stats_command
from vestige.cli.support import ErrorTranslatingGroup, Project
from vestige.config import load_settings

# The commands are imported under other names: ``vestige.cli.check`` and
# ``vestige.cli.prune`` must stay the submodules (tests patch them).
__all__ = ["app"]


@click.group(
    "vestige", cls=ErrorTranslatingGroup, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(__version__, prog_name="vestige")
@click.pass_context
def app(ctx: click.Context) -> None:
    """Record history for SQLAlchemy: read it, migrate it, prune it.

    The database comes from DATABASE_URL, else [tool.vestige] database_url in
    pyproject.toml, else vestige.db (SQLite) in the project directory.

    \b
    Example:
        vestige history Package 1
        DATABASE_URL=postgresql+psycopg2://postgres@localhost/app vestige check
    """
    ctx.obj = Project(load_settings())


app.add_command(history_command)
app.add_command(restore_command)
app.add_command(check_command)
app.add_command(prune_command)
app.add_command(serve_command)
app.add_command(archive_command)
app.add_command(stats_command)
app.add_command(init_command)
