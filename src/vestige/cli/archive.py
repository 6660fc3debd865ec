"""``vestige archive verify`` and ``vestige archive ls``, thin commands over
:mod:`vestige.archive`."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from vestige.cli.output import echo_json, echo_table, human_bytes
from vestige.errors import ArchiveError, ConfigError, exit_codes_help

__all__ = ["archive"]

VERIFIED = "OK: {files:,} files, {rows:,} rows, {size} match the manifest of {url}."
PENDING_NOTE = (
    "note: {count:,} file(s) pending from an interrupted prune; the next prune settles them"
)
VERIFY_FAILED = "archive {url}: {path}: {problem}{more}"
MORE = " (and {count:,} more problem(s), listed above)"
EMPTY = "{url} holds no archived files yet"
NEEDS_EXTRA = (
    "vestige archive needs pyarrow, fsspec and duckdb ({missing} is missing): "
    "pip install 'vestige[archive]'"
)


def _storage() -> Any:
    try:
        import vestige.archive
    except ImportError as exc:
        raise ConfigError(NEEDS_EXTRA.format(missing=exc.name)) from None
    return vestige.archive


@click.group("archive", epilog=exit_codes_help("archive"))
def archive() -> None:
    """Check and list an archive that `vestige prune --archive` wrote.

    \b
    Examples:
        vestige archive verify ./archive
        vestige archive ls s3://bucket/history --json
    """


@archive.command("verify", epilog=exit_codes_help("archive"))
@click.argument("url")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON report on stdout.")
def verify_command(url: str, as_json: bool) -> None:
    """Re-read every file of the archive at URL against its manifest.

    Each file must exist, have the SHA-256 and row count the manifest records, and
    read as Parquet; every Parquet file must be in the manifest.

    \b
    Example:
        vestige archive verify ./archive
    """
    report = _storage().verify(url)
    if as_json:
        echo_json(report.to_dict())
    if report.pending:
        click.echo(PENDING_NOTE.format(count=len(report.pending)), err=True)
    if not report.ok:
        first, *rest = report.problems
        if not as_json:
            for problem in rest:
                click.echo(f"{problem.path}: {problem.problem}", err=True)
        more = MORE.format(count=len(rest)) if rest else ""
        raise ArchiveError(
            VERIFY_FAILED.format(url=url, path=first.path, problem=first.problem, more=more)
        )
    if not as_json:
        click.echo(
            VERIFIED.format(
                files=report.files, rows=report.rows, size=human_bytes(report.bytes), url=url
            )
        )


@archive.command("ls", epilog=exit_codes_help("archive"))
@click.argument("url")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def ls_command(url: str, as_json: bool) -> None:
    """List what the archive at URL holds: per table and month, files, rows and bytes.

    \b
    Example:
        vestige archive ls ./archive
    """
    rows = _storage().listing(url)
    if as_json:
        echo_json([row.to_dict() for row in rows])
        return
    if not rows:
        click.echo(EMPTY.format(url=url))
        return
    table = Table(title=f"Archive {url}")
    table.add_column("table", no_wrap=True)
    table.add_column("month")
    for name in ("files", "rows", "bytes"):
        table.add_column(name, justify="right")
    for row in rows:
        table.add_row(
            row.table, row.month, f"{row.files:,}", f"{row.rows:,}", human_bytes(row.bytes)
        )
    table.add_section()
    table.add_row(
        "total",
        "",
        f"{sum(row.files for row in rows):,}",
        f"{sum(row.rows for row in rows):,}",
        human_bytes(sum(row.bytes for row in rows)),
    )
    echo_table(table)
