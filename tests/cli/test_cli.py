"""Every command has help with an example; errors are one line with an exit code."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from vestige.cli import app

COMMANDS = sorted(app.commands)


def test_top_level_help_has_an_example() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "Example" in result.output
    for name in COMMANDS:
        assert name in result.output


@pytest.mark.parametrize("name", COMMANDS)
def test_command_help_has_an_example(name: str) -> None:
    result = CliRunner().invoke(app, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output
