"""One exception hierarchy for Vestige.

Every error a user can cause derives from :class:`VestigeError`. The command line
catches the root once, prints ``error: <message>`` on one line and exits with the
error's :attr:`~VestigeError.exit_code`.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic.util import CommandError


class VestigeError(Exception):
    """Root of every error Vestige raises on purpose.

    Attributes:
        exit_code: The process exit code the command line uses for this error:
            1 for a failure while working, 2 for bad input.
    """

    exit_code: int = 1


def first_line(exc: BaseException) -> str:
    """The first line of a database driver's message (``exc.orig``), else of ``exc`` itself.

    Drivers add context lines (the statement, a hint); one line is what messages show.
    """
    text = str(getattr(exc, "orig", None) or exc).strip()
    return (text.splitlines() or [""])[0]


class ConfigError(VestigeError):
    """The settings, a policy or a command-line option is malformed."""

    exit_code = 2


class ModelNotFound(VestigeError):
    """A model name does not name a versioned model in the models module."""

    exit_code = 2


class DatabaseError(VestigeError):
    """The database could not be reached or refused an operation."""

    exit_code = 1


VERSION_TABLES_MISSING = (
    "version tables missing from the model metadata: {tables}; call configure_mappers() "
    "(sqlalchemy.orm's or vestige.versioning's: either does) once every model is declared, "
    "in the models module env.py imports (Vestige's README.md, section Migrations)"
)


class VersionTablesMissing(VestigeError, CommandError):
    """Versioned models whose version tables are absent from the metadata.

    Raised before Alembic compares the database with the models: if it compared
    them, it would propose dropping every version table. It is also an Alembic
    ``CommandError``, so the ``alembic`` command prints it as one ``FAILED:`` line.

    Attributes:
        tables: The names of the missing version tables, sorted.
    """

    def __init__(self, tables: Sequence[str]) -> None:
        self.tables = sorted(tables)
        super().__init__(VERSION_TABLES_MISSING.format(tables=", ".join(self.tables)))


class RecordNotFound(VestigeError):
    """A record has no history, or did not exist at the moment asked about."""

    exit_code = 2


class HistoryPruned(VestigeError):
    """The versions needed to answer or to restore have been pruned (exit code 1)."""


class RestoreRefused(VestigeError):
    """The database rejected a restored row: a unique value is taken, a referenced row gone."""


class PrunerBusy(VestigeError):
    """Another pruner holds the retention lock on this database."""

    exit_code = 3


class UnversionedWriteError(VestigeError):
    """A bulk statement would change a versioned table without writing its history.

    Raised by the bulk-write guard in ``raise`` mode (see :mod:`vestige.bulk_writes`)
    before the statement runs, so nothing has changed.
    """


class UnversionedWriteWarning(UserWarning):
    """A bulk statement changed a versioned table without writing its history.

    Emitted by the bulk-write guard in ``warn`` mode, its default.
    """


class RestoreConflict(VestigeError):
    """A record changed after its restore was planned, or another transaction holds it.

    Nothing was written; planning again shows what a restore would do now (exit code 5).
    """

    exit_code = 5
