"""What the commands write: one width for tables off a terminal, one way to write JSON.

Every command prints through here: tables go to a terminal at its own width and to a
pipe or a file at :data:`TABLE_WIDTH` columns; JSON goes through :func:`echo_json`, whose
:func:`json_default` writes times in ISO 8601, decimals as strings and bytes as hex.
"""

from __future__ import annotations

import io
import json
import sys
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import click
from rich.console import Console, RenderableType

__all__ = [
    "TABLE_WIDTH",
    "echo_json",
    "echo_table",
    "human_bytes",
    "json_default",
    "stderr_is_terminal",
    "stdin_is_terminal",
    "stdout_console",
]

TABLE_WIDTH = 120
"""Width of tables written to a pipe or a file (a terminal uses its own width)."""


def stdin_is_terminal() -> bool:
    """Whether a person can answer a confirmation prompt."""
    return sys.stdin is not None and sys.stdin.isatty()


def stderr_is_terminal() -> bool:
    """Whether a progress bar would be seen."""
    return sys.stderr is not None and sys.stderr.isatty()


def stdout_console() -> Console:
    """A console on stdout: a terminal's own width, else :data:`TABLE_WIDTH` columns."""
    console = Console()
    return console if console.is_terminal else Console(width=TABLE_WIDTH)


def echo_table(table: RenderableType) -> None:
    """Print a table on stdout; off a terminal, without colour or trailing spaces."""
    if sys.stdout.isatty():
        Console(file=sys.stdout).print(table)
        return
    buffer = io.StringIO()
    Console(file=buffer, width=TABLE_WIDTH, color_system=None, force_terminal=False).print(table)
    click.echo("\n".join(line.rstrip() for line in buffer.getvalue().splitlines()))


def echo_json(payload: Any, *, indent: int | None = 2) -> None:
    """Print ``payload`` as JSON on stdout (one line with ``indent=None``).

    Args:
        payload: What to print; values JSON has no type for go through :func:`json_default`.
        indent: Spaces per level, or None for one line (reports and errors).
    """
    click.echo(json.dumps(payload, indent=indent, default=json_default))


def json_default(value: Any) -> Any:
    """How a value JSON has no type for is written: ISO 8601, a string, or hex for bytes."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def human_bytes(size: int) -> str:
    """``12.3 MB``: a byte count as people read it (powers of 1000, as disks are sold)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")
