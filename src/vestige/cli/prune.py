"""``vestige prune``: enforce the retention policy, a thin command over :mod:`vestige.retention`."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import click
import sqlalchemy as sa
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from vestige.cli.output import (
    echo_json,
    human_bytes,
    stderr_is_terminal,
    stdin_is_terminal,
    stdout_console,
)
from vestige.cli.support import Project, database_error, models_option
from vestige.errors import ConfigError, Declined, Interrupted, exit_codes_help
from vestige.retention.engine import DEFAULT_BATCH_SIZE
from vestige.retention.engine import prune as prune_history
from vestige.retention.policy import Policy, load_policy
from vestige.retention.report import TRANSACTION_PHASE, PruneReport
from vestige.retention.report import Progress as PruneProgress

__all__ = ["prune"]

NEEDS_YES = (
    "refusing to delete history without confirmation: not on a terminal, so pass --yes "
    "(or --dry-run to see what would go)"
)
CONFIRM = "Delete {versions:,} version rows and {transactions:,} transactions from {url}?"
DECLINED = "declined at the prompt; nothing was deleted"
MAX_BATCH_SIZE = 1_000_000_000
BAD_BATCH_SIZE = "--batch-size must be a whole number from 1 to {limit:,}, not {value!r}"
DRY_RUN_SUMMARY = (
    "Dry run: would delete {versions:,} version rows and {transactions:,} transactions "
    "({seconds:.2f} s); nothing was deleted."
)
RUN_SUMMARY = (
    "Deleted {versions:,} version rows and {transactions:,} transactions in {seconds:.2f} s."
)
AFTER_FAILURE = "; nothing past the last committed batch changed"
DRY_RUN_ARCHIVE = "Dry run: would archive every row above to {url} before deleting it."
ARCHIVED = "Archived {rows:,} rows in {files:,} files ({size}) to {url}{settled}."
SETTLED = "; settled {count:,} file(s) an interrupted run had left pending"
INTERRUPTED = "interrupted after {batches}; run it again to finish"
STOPPING = "stopping after the current batch (press Ctrl-C again to stop at once)"
#: Test-only: pause after the first committed batch, say so on stderr and wait for a
#: line on stdin (so that a test can signal a pruner at a known point).
PAUSE_AFTER_FIRST_BATCH = "VESTIGE_PRUNE_PAUSE_AFTER_FIRST_BATCH"
PAUSED = "paused after the first committed batch"


@click.command("prune", epilog=exit_codes_help("prune"))
@click.option(
    "--policy",
    "policy_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="TOML file with the rules at its top level (default: [tool.vestige.retention]).",
)
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@click.option(
    "--yes", "-y", is_flag=True, help="Do not ask for confirmation (needed off a terminal)."
)
@click.option(
    "--batch-size",
    default=str(DEFAULT_BATCH_SIZE),
    metavar="N",
    show_default=True,
    help="Rows per committed batch.",
)
@click.option(
    "--archive",
    "archive_url",
    metavar="URL",
    default=None,
    help="Copy every deleted row to this directory or fsspec URL as Parquet before its "
    "batch is committed (default: VESTIGE_ARCHIVE_URL, else [tool.vestige] archive_url).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON report on stdout.")
@models_option
@click.pass_obj
def prune(
    project: Project,
    policy_file: Path | None,
    dry_run: bool,
    yes: bool,
    batch_size: str,
    archive_url: str | None,
    as_json: bool,
    models_module: str | None,
) -> None:
    """Delete the history the retention policy no longer keeps, in committed batches.

    Ctrl-C or SIGTERM stops it after the batch under way (the report says what was done).

    \b
    Examples:
        vestige prune --dry-run
        vestige prune --yes --json --batch-size 10000
        vestige prune --policy retention.toml --yes
        vestige prune --archive ./archive --yes
    """
    size = _batch_size(batch_size)
    archive = archive_url or project.settings.archive_url
    policy = load_policy(project.settings.raw, policy_file)
    project.load_models(models_module)
    url = project.settings.safe_url
    if not dry_run and not yes:
        if not stdin_is_terminal():
            raise ConfigError(NEEDS_YES)
        # The question says how much goes: a dry run counts it first.
        preview = _run(project, policy, url, size, archive, dry_run=True, progress=False)
        asked = CONFIRM.format(
            versions=preview.versions_deleted,
            transactions=preview.transactions_deleted,
            url=url,
        )
        if not click.confirm(asked, err=True):
            raise Declined(DECLINED)
    report = _run(
        project, policy, url, size, archive, dry_run=dry_run, progress=stderr_is_terminal()
    )
    if as_json:
        echo_json(report.to_dict(), indent=None)
    else:
        _print_report(stdout_console(), report)


def _run(
    project: Project,
    policy: Policy,
    url: str,
    size: int,
    archive: str | None,
    dry_run: bool,
    progress: bool,
) -> PruneReport:
    console = Console(stderr=True)
    tally = _Tally(dry_run)
    try:
        with (
            project.engine() as engine,
            _ProgressBar(console, progress) as bar,
            _stop_on_signal() as stop,
        ):

            def on_progress(event: PruneProgress) -> None:
                bar.update(event)
                committed = tally.update(event)
                if committed and tally.batches == 1 and os.environ.get(PAUSE_AFTER_FIRST_BATCH):
                    _pause()
                if stop.requested:
                    raise tally.interrupted()

            return prune_history(
                engine,
                policy,
                dry_run=dry_run,
                batch_size=size,
                on_progress=on_progress,
                archive=archive,
            )
    except KeyboardInterrupt:
        raise tally.interrupted() from None
    except sa.exc.DBAPIError as exc:
        raise database_error(exc, url, AFTER_FAILURE) from None


def _batch_size(value: str) -> int:
    try:
        size = int(value)
    except ValueError:
        size = 0
    if not 1 <= size <= MAX_BATCH_SIZE:
        raise ConfigError(BAD_BATCH_SIZE.format(limit=MAX_BATCH_SIZE, value=value))
    return size


class _StopRequest:
    """Set by the first SIGINT or SIGTERM; the second one stops at once."""

    def __init__(self) -> None:
        self.requested = False

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        click.echo(STOPPING, err=True)


@contextmanager
def _stop_on_signal() -> Iterator[_StopRequest]:
    """Turn SIGINT and SIGTERM into a request to stop after the current batch."""
    stop = _StopRequest()
    caught = (signal.SIGINT, signal.SIGTERM)
    try:
        previous = {signum: signal.signal(signum, stop.handle) for signum in caught}
    except ValueError:  # not the main thread: signals stay as they are
        previous = {}
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _pause() -> None:
    click.echo(PAUSED, err=True)
    sys.stdin.readline()


class _Tally:
    """What a run has committed so far, from its progress events, for a partial report."""

    def __init__(self, dry_run: bool) -> None:
        self.dry_run = dry_run
        self.batches = 0
        self.done: dict[str, int] = {}
        self.started = time.perf_counter()

    def update(self, event: PruneProgress) -> bool:
        """Count ``event``; return whether it reports a committed batch."""
        # retention reports each committed batch by a larger ``done`` in its phase
        committed = not self.dry_run and event.done > self.done.get(event.phase, 0)
        self.batches += committed
        self.done[event.phase] = event.done
        return committed

    def interrupted(self) -> Interrupted:
        """The error that ends an interrupted run, with its partial report."""
        batches = f"{self.batches} committed batch{'' if self.batches == 1 else 'es'}"
        # named as in PruneReport.to_dict: a dry run's counts are what it would delete
        deleted = "would_delete" if self.dry_run else "deleted"
        tables = [
            {"table": phase, deleted: done}
            for phase, done in self.done.items()
            if phase != TRANSACTION_PHASE
        ]
        report: dict[str, Any] = {
            "dry_run": self.dry_run,
            "interrupted": True,
            "committed_batches": self.batches,
            "tables": tables,
            f"transactions_{deleted}": self.done.get(TRANSACTION_PHASE, 0),
            "seconds": round(time.perf_counter() - self.started, 3),
        }
        return Interrupted(INTERRUPTED.format(batches=batches), report)


class _ProgressBar:
    """A rich progress bar per phase on a terminal; nothing otherwise."""

    def __init__(self, console: Console, enabled: bool) -> None:
        self.progress = (
            Progress(
                TextColumn("{task.description:<28}"),
                BarColumn(),
                MofNCompleteColumn(),
                console=console,
                transient=True,
            )
            if enabled
            else None
        )
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self) -> _ProgressBar:
        if self.progress:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress:
            self.progress.stop()

    def update(self, event: PruneProgress) -> None:
        if self.progress is None:
            return
        if event.phase not in self.tasks:
            self.tasks[event.phase] = self.progress.add_task(event.phase, total=event.total)
        self.progress.update(self.tasks[event.phase], completed=event.done, total=event.total)


def _print_report(console: Console, report: PruneReport) -> None:
    deleted = "would delete" if report.dry_run else "deleted"
    table = Table(title="vestige prune" + (" (dry run)" if report.dry_run else ""))
    table.add_column("table", no_wrap=True)
    for column in ("examined", deleted, "kept"):
        table.add_column(column, justify="right")
    table.add_column("oldest kept")
    for row in report.tables:
        oldest = row.oldest_kept_issued_at
        table.add_row(
            row.table,
            f"{row.examined:,}",
            f"{row.deleted:,}",
            f"{row.kept:,}",
            oldest.isoformat(sep=" ", timespec="seconds") if oldest else "-",
        )
    console.print(table)
    summary = DRY_RUN_SUMMARY if report.dry_run else RUN_SUMMARY
    console.print(
        summary.format(
            versions=report.versions_deleted,
            transactions=report.transactions_deleted,
            seconds=report.seconds,
        ),
        highlight=False,
        soft_wrap=True,
    )
    archive = report.archive
    if archive is None:
        return
    if report.dry_run:
        line = DRY_RUN_ARCHIVE.format(url=archive.url)
    else:
        settled = SETTLED.format(count=archive.reconciled) if archive.reconciled else ""
        line = ARCHIVED.format(
            rows=archive.rows,
            files=archive.files,
            size=human_bytes(archive.bytes),
            url=archive.url,
            settled=settled,
        )
    console.print(line, highlight=False, soft_wrap=True)
