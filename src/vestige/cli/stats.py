"""``vestige stats``: a thin command over :mod:`vestige.retention.stats`."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from vestige.cli.output import echo_json, echo_table, human_bytes
from vestige.cli.support import Project, models_option
from vestige.errors import exit_codes_help
from vestige.retention.chart import write_chart
from vestige.retention.policy import load_policy
from vestige.retention.stats import HistoryStats, daily_versions, history_stats

__all__ = ["stats"]

CHART_WRITTEN = "Chart of cumulative versions per table written to {path}."
ARCHIVE_LINE = "Archive {url}: {size}."
PRUNE_LINE = (
    "The retention policy would delete {versions:,} version rows and {transactions:,} "
    "transactions now (vestige prune --dry-run lists them)."
)


@click.command("stats", epilog=exit_codes_help("stats"))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@click.option(
    "--chart",
    "chart",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    metavar="FILE",
    help="Also draw cumulative versions per table over time into FILE (.png or .svg).",
)
@click.option(
    "--archive",
    "archive_url",
    metavar="URL",
    default=None,
    help="Report this archive's size (default: VESTIGE_ARCHIVE_URL, else "
    "[tool.vestige] archive_url).",
)
@models_option
@click.pass_obj
def stats(
    project: Project,
    as_json: bool,
    chart: Path | None,
    archive_url: str | None,
    models_module: str | None,
) -> None:
    """Show how big each version table is, how fast it grows, and what pruning would take.

    Per version table: live records, version rows, versions per record (median and
    99th percentile), bytes of table and indexes, versions written per day over the last
    30 and 365 days, the records with the most versions, what the retention policy
    would delete, and rows in the archive if one is configured.

    \b
    Examples:
        vestige stats
        vestige stats --json
        vestige stats --chart growth.svg
    """
    policy = load_policy(project.settings.raw)
    project.load_models(models_module)
    archive = archive_url or project.settings.archive_url
    with project.engine() as engine:
        found = history_stats(engine, policy, archive=archive)
        if chart is not None:
            write_chart(daily_versions(engine, policy), chart)
    if as_json:
        echo_json(found.to_dict())
    else:
        _print(found)
    if chart is not None:
        click.echo(CHART_WRITTEN.format(path=chart), err=as_json)


def _print(found: HistoryStats) -> None:
    table = Table(title="vestige stats")
    table.add_column("table", no_wrap=True)
    headings = ["live", "versions", "median", "p99", "size", "/day 30d", "/day 365d", "would prune"]
    if found.archive_url is not None:
        headings.append("archived")
    for heading in headings:
        table.add_column(heading, justify="right")
    for row in found.tables:
        cells = [
            row.table,
            f"{row.live_records:,}",
            f"{row.version_rows:,}",
            f"{row.median_versions:g}",
            f"{row.p99_versions:,}",
            "?" if row.bytes is None else human_bytes(row.bytes),
            f"{row.per_day_30:,.2f}",
            f"{row.per_day_365:,.2f}",
            f"{row.would_prune:,}",
        ]
        if found.archive_url is not None:
            cells.append(f"{row.archived_rows or 0:,}")
        table.add_row(*cells)
    echo_table(table)
    if found.size_note:
        click.echo(found.size_note)
    for row in found.tables:
        if row.top:
            tops = ", ".join(f"{','.join(map(str, key))} ({count})" for key, count in row.top)
            click.echo(f"Most versions in {row.table}: {tops}")
    versions = sum(row.would_prune for row in found.tables)
    click.echo(PRUNE_LINE.format(versions=versions, transactions=found.would_prune_transactions))
    if found.archive_url is not None:
        size = human_bytes(found.archive_bytes or 0)
        click.echo(ARCHIVE_LINE.format(url=found.archive_url, size=size))
