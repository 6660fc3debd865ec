"""``vestige serve``: the history browser (:mod:`vestige.web`) on the configured database.

It listens on 127.0.0.1 unless told otherwise: whoever can reach the port can read
every record's history, and restore too with ``--allow-restore``.
"""

from __future__ import annotations

import ipaddress

import click

from vestige.cli.support import Project, models_option, pass_project
from vestige.database import open_engine
from vestige.errors import ConfigError, exit_codes_help

__all__ = ["NEEDS_WEB", "serve_command"]

NEEDS_WEB = (
    "vestige serve needs the web extra ({missing} is not installed): pip install 'vestige[web]'"
)
SERVING = "Serving the history of {url} at http://{host}:{port}/ ({mode}); press Ctrl-C to stop"
OPEN_TO_NETWORK = (
    "warning: listening on {host}, not on this machine only: anyone who can reach port "
    "{port} can read every record's history{and_restore}"
)


@click.command("serve", epilog=exit_codes_help("serve"))
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; the default lets only this machine connect.",
)
@click.option(
    "--port", type=click.IntRange(1, 65535), default=8765, show_default=True, help="Port."
)
@click.option(
    "--allow-restore",
    is_flag=True,
    help="Offer restore and undelete (a plan first, written only once confirmed).",
)
@models_option
@pass_project
def serve_command(
    project: Project, host: str, port: int, allow_restore: bool, models_module: str | None
) -> None:
    """Browse the history in a web browser: models, records, diffs, transactions.

    Read-only unless --allow-restore. Everyone who can reach HOST:PORT may read (and,
    with --allow-restore, restore): keep the default host, or put it behind a proxy
    that authenticates. To decide per request, mount vestige.web.create_app in your
    application with an authorize callable instead.

    \b
    Examples:
        vestige serve
        vestige serve --port 9000 --allow-restore
    """
    try:
        import uvicorn

        from vestige.web import create_app
    except ModuleNotFoundError as exc:
        raise ConfigError(NEEDS_WEB.format(missing=exc.name)) from None
    project.load_models(models_module)
    engine = open_engine(project.settings.database_url)
    app = create_app(
        engine, authorize=lambda request, permission: True, allow_restore=allow_restore
    )
    mode = "restore allowed" if allow_restore else "read-only"
    if not _loopback(host):
        and_restore = " and restore records" if allow_restore else ""
        click.echo(OPEN_TO_NETWORK.format(host=host, port=port, and_restore=and_restore), err=True)
    click.echo(SERVING.format(url=project.settings.safe_url, host=host, port=port, mode=mode))
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        engine.dispose()


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
