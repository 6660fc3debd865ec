"""``vestige check``: versioning still whole after the migrations? (CI and people)."""

from __future__ import annotations

import click

from vestige.cli.output import echo_json
from vestige.cli.support import Project, models_option
from vestige.errors import exit_codes_help
from vestige.migrations.check import check as run_check
from vestige.migrations.check import models_metadata, project_alembic_config
from vestige.migrations.lint import LOCK_KIND, lint_pending

OK_LINE = "ok: at head {heads}; {version_tables} version tables checked{native}"
LINT_SKIPPED = "lint: skipped, its rules are PostgreSQL's and this database is {dialect}"
LINT_NOTHING = "lint: no pending revision takes a long lock"


@click.command("check", epilog=exit_codes_help("check"))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--lint",
    is_flag=True,
    help="Also lint pending revisions for long locks (PostgreSQL, needs squawk-cli).",
)
@click.option(
    "-c",
    "--config",
    "alembic_files",
    multiple=True,
    metavar="FILE",
    help="Alembic config file, as for alembic -c (default: ALEMBIC_CONFIG, else "
    "alembic.ini and [tool.alembic] of pyproject.toml).",
)
@models_option
@click.pass_obj
def check(
    project: Project,
    as_json: bool,
    lint: bool,
    alembic_files: tuple[str, ...],
    models_module: str | None,
) -> None:
    """Check that the database is at head and versioning matches the models.

    One line per finding (table: problem; fix: what to run).

    \b
    Example:
        DATABASE_URL=postgresql+psycopg2://postgres@localhost/app vestige check
        vestige check --json --lint
    """
    project.load_models(models_module)
    config = project_alembic_config(
        project.settings.project_root, project.settings.database_url, config_files=alembic_files
    )
    metadata = models_metadata()
    with project.engine() as engine:
        report = run_check(config, engine, metadata)
        if lint:
            report = report.with_lint(lint_pending(config, engine))
        dialect = engine.dialect.name
    findings = report.findings
    if as_json:
        echo_json(report.to_dict())
    else:
        for finding in findings:
            click.echo(finding.line())
        if report.lint == "skipped":
            click.echo(LINT_SKIPPED.format(dialect=dialect))
        elif report.lint == "done" and not any(f.kind == LOCK_KIND for f in findings):
            click.echo(LINT_NOTHING)
        if not findings:
            native = f", {report.native_tables} native triggers" if report.native_tables else ""
            click.echo(
                OK_LINE.format(
                    heads=", ".join(report.heads),
                    version_tables=report.version_tables,
                    native=native,
                )
            )
    if findings:
        click.get_current_context().exit(1)
