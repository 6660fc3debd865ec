"""``vestige init``: set Vestige up in this project's Alembic environment."""

from __future__ import annotations

import click

from vestige.cli.support import Project, models_option
from vestige.errors import exit_codes_help
from vestige.migrations.init import CREATED_TEMPLATES, plan_init

__all__ = ["init"]

NOTHING_TO_DO = "nothing to change: {root} is set up for Vestige (models: {models})"
DRY_RUN_SUMMARY = "dry run: would write {count} file(s); nothing was written"
CREATED_ALEMBIC = "made an Alembic set-up from its {template!r} template"
NEXT_STEPS = (
    "next: alembic revision --autogenerate -m 'history tables' && alembic upgrade head "
    "&& vestige check"
)


@click.command("init", epilog=exit_codes_help("init"))
@models_option
@click.option(
    "--template",
    type=click.Choice(CREATED_TEMPLATES),
    default=None,
    help="Alembic template when there is no Alembic set-up yet (default: pyproject when "
    "there is a pyproject.toml, else generic).",
)
@click.option("--dry-run", is_flag=True, help="Show the changes as a diff; write nothing.")
@click.pass_obj
def init(project: Project, models_module: str | None, template: str | None, dry_run: bool) -> None:
    """Set Vestige up in this project's Alembic environment.

    Finds alembic.ini and/or [tool.alembic] (or runs alembic init), adds to env.py the
    models import, configure_mappers(), the version-table guard, the database URL from
    the settings, batch mode on SQLite and the connection a test harness hands over,
    and writes [tool.vestige] models to pyproject.toml. Running it again changes nothing.

    \b
    Example:
        vestige init --models app.models --dry-run
        vestige init --models app.models
    """
    plan = plan_init(project.settings.project_root, models_module, template=template)
    if not plan.changes:
        click.echo(NOTHING_TO_DO.format(root=plan.root, models=plan.models))
        return
    if dry_run:
        click.echo(plan.diff(), nl=False)
        click.echo(DRY_RUN_SUMMARY.format(count=len(plan.changes)))
        return
    plan.apply()
    if plan.template is not None:
        click.echo(CREATED_ALEMBIC.format(template=plan.template))
    for line in plan.lines():
        click.echo(line)
    click.echo(NEXT_STEPS)
