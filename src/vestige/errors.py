"""One exception hierarchy for Vestige, and the exit codes of the command line.

Every error a user can cause derives from :class:`VestigeError`. The command line
catches the root once, prints ``error: <message>`` on one line and exits with the
error's :attr:`~VestigeError.exit_code`, one of :class:`ExitCode`.
:data:`COMMAND_EXIT_CODES` is the one table of which command exits with which code:
each command's ``--help`` and the table in docs/exit-codes.md are made from it (and a
test checks both).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import IntEnum
from typing import Any

from alembic.util import CommandError


class ExitCode(IntEnum):
    """The exit codes of the ``vestige`` commands."""

    OK = 0
    FAILED = 1
    BAD_INPUT = 2
    BUSY = 3
    DECLINED = 4
    CHANGED = 5
    INTERRUPTED = 130


#: What each exit code means, as ``--help`` and docs/exit-codes.md say it.
EXIT_CODE_MEANINGS: Mapping[ExitCode, str] = {
    ExitCode.OK: "done",
    ExitCode.FAILED: "the database failed, is not migrated, or lacks the history needed",
    ExitCode.BAD_INPUT: "bad input (an argument, option, policy or setting); nothing changed",
    ExitCode.BUSY: "another pruner is running on this database; nothing changed",
    ExitCode.DECLINED: "answered no at the prompt; nothing changed",
    ExitCode.CHANGED: "the record changed since the plan was shown (or is being changed)",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C); nothing uncommitted was kept",
}

#: Where a command gives an exit code its own meaning.
COMMAND_EXIT_CODE_MEANINGS: Mapping[tuple[str, ExitCode], str] = {
    ("check", ExitCode.FAILED): "something is out of date (one line each), or the database failed",
    ("archive", ExitCode.FAILED): (
        "verify found a file missing, changed or unlisted (named on stderr), "
        "or the archive cannot be read"
    ),
    ("prune", ExitCode.FAILED): (
        "the database failed, or the archive could not be written (that batch stays)"
    ),
    ("init", ExitCode.BAD_INPUT): (
        "env.py is not one vestige init can edit, or the models module is unclear; nothing changed"
    ),
    ("prune", ExitCode.INTERRUPTED): (
        "interrupted (Ctrl-C or SIGTERM): stopped after the current batch; run it again to finish"
    ),
}

_READ_ONLY = (ExitCode.OK, ExitCode.FAILED, ExitCode.BAD_INPUT, ExitCode.INTERRUPTED)

#: The exit codes of every command: the one table ``--help`` and docs/exit-codes.md show.
COMMAND_EXIT_CODES: Mapping[str, tuple[ExitCode, ...]] = {
    "archive": _READ_ONLY,
    "check": _READ_ONLY,
    "history": _READ_ONLY,
    "init": _READ_ONLY,
    "prune": (*_READ_ONLY[:3], ExitCode.BUSY, ExitCode.DECLINED, ExitCode.INTERRUPTED),
    "restore": (*_READ_ONLY[:3], ExitCode.DECLINED, ExitCode.CHANGED, ExitCode.INTERRUPTED),
    "serve": _READ_ONLY[:3],
    "stats": _READ_ONLY,
}


def exit_code_meaning(command: str, code: ExitCode) -> str:
    """What ``code`` means when ``command`` exits with it."""
    return COMMAND_EXIT_CODE_MEANINGS.get((command, code), EXIT_CODE_MEANINGS[code])


def exit_codes_help(command: str) -> str:
    """The ``Exit codes:`` block of ``command``'s ``--help`` (click keeps its lines)."""
    lines = [
        f"{code.value:<5}{exit_code_meaning(command, code)}" for code in COMMAND_EXIT_CODES[command]
    ]
    return "\b\nExit codes:\n" + "\n".join(f"  {line}" for line in lines)


class VestigeError(Exception):
    """Root of every error Vestige raises on purpose.

    Attributes:
        exit_code: The process exit code the command line uses for this error (see
            :class:`ExitCode`): 1 for a failure while working, 2 for bad input.
    """

    exit_code: int = ExitCode.FAILED

    def json_details(self) -> dict[str, Any]:
        """What ``--json`` prints beside ``error`` and ``exit_code`` (nothing by default)."""
        return {}


def first_line(exc: BaseException) -> str:
    """The first line of a database driver's message (``exc.orig``), else of ``exc`` itself.

    Drivers add context lines (the statement, a hint); one line is what messages show.
    """
    text = str(getattr(exc, "orig", None) or exc).strip()
    return (text.splitlines() or [""])[0]


class ConfigError(VestigeError):
    """The settings, a policy or a command-line option is malformed."""

    exit_code = ExitCode.BAD_INPUT


class ModelNotFound(VestigeError):
    """A model name does not name a versioned model in the models module."""

    exit_code = ExitCode.BAD_INPUT


class DatabaseError(VestigeError):
    """The database could not be reached or refused an operation."""

    exit_code = ExitCode.FAILED


class Declined(VestigeError):
    """The person at the terminal answered no (or nothing) to a confirmation prompt."""

    exit_code = ExitCode.DECLINED


class Interrupted(VestigeError):
    """A command stopped on Ctrl-C or SIGTERM; what it had committed stays.

    Attributes:
        details: What ``--json`` prints with the error, e.g. a prune's partial report.
    """

    exit_code = ExitCode.INTERRUPTED

    def __init__(self, message: str, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.details = dict(details or {})

    def json_details(self) -> dict[str, Any]:
        """The partial report, printed with the error under ``--json``."""
        return dict(self.details)


VERSION_TABLES_MISSING = (
    "version tables missing from the model metadata: {tables}; call configure_mappers() "
    "(sqlalchemy.orm's or vestige.versioning's: either does) once every model is declared, "
    "in the models module env.py imports (see Vestige's docs/migrations.md, Set-up)"
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

    exit_code = ExitCode.BAD_INPUT


class HistoryPruned(VestigeError):
    """The versions needed to answer or to restore have been pruned (exit code 1)."""


class RestoreRefused(VestigeError):
    """The database rejected a restored row: a unique value is taken, a referenced row gone."""


class PrunerBusy(VestigeError):
    """Another pruner holds the retention lock on this database."""

    exit_code = ExitCode.BUSY


class UnversionedWriteError(VestigeError):
    """A bulk statement would change a versioned table without writing its history.

    Raised by the bulk-write guard in ``raise`` mode (see :mod:`vestige.versioning.bulk`)
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

    exit_code = ExitCode.CHANGED


class ArchiveError(VestigeError):
    """The archive cannot be opened, written or read, or does not match its manifest.

    Raised before the batch it concerns is deleted: that batch stays in the database.
    """
