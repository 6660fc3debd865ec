"""The table of exit codes: one place in code (errors.py), shown by --help and the docs."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from tests.support.project import ROOT
from vestige.cli import app
from vestige.errors import (
    COMMAND_EXIT_CODE_MEANINGS,
    COMMAND_EXIT_CODES,
    EXIT_CODE_MEANINGS,
    ExitCode,
    exit_code_meaning,
)

START, END = "<!-- exit-codes:start -->", "<!-- exit-codes:end -->"


def help_exit_codes(command: str) -> dict[int, str]:
    """The ``Exit codes:`` block of ``vestige COMMAND --help``, as {code: meaning}."""
    result = CliRunner().invoke(app, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    block = result.stdout.split("Exit codes:\n", 1)[1]
    found: dict[int, str] = {}
    for line in block.splitlines():
        match = re.fullmatch(r"\s+(\d+)\s+(.+)", line)
        if match is None:
            break
        found[int(match[1])] = match[2]
    return found


EXIT_CODES_PAGE = ROOT / "docs" / "exit-codes.md"


def docs_table() -> str:
    text = EXIT_CODES_PAGE.read_text()
    return text.split(START, 1)[1].split(END, 1)[0].strip()


def expected_table() -> str:
    commands = sorted(COMMAND_EXIT_CODES)
    lines = [
        "| code | meaning | " + " | ".join(f"`{name}`" for name in commands) + " |",
        "|---:|---|" + ":-:|" * len(commands),
    ]
    for code in ExitCode:
        marks = ["yes" if code in COMMAND_EXIT_CODES[name] else "" for name in commands]
        lines.append(f"| {code.value} | {EXIT_CODE_MEANINGS[code]} | " + " | ".join(marks) + " |")
    lines.append("")
    for (name, code), meaning in COMMAND_EXIT_CODE_MEANINGS.items():
        lines.append(f"- `vestige {name}` exits {code.value} when {meaning}.")
    return "\n".join(lines)


def test_every_command_is_in_the_table() -> None:
    assert set(COMMAND_EXIT_CODES) == set(app.commands)


@pytest.mark.parametrize("command", sorted(app.commands))
def test_help_lists_the_commands_exit_codes(command: str) -> None:
    expected = {
        code.value: exit_code_meaning(command, code) for code in COMMAND_EXIT_CODES[command]
    }
    assert help_exit_codes(command) == expected


def test_the_docs_table_is_the_one_in_errors_py() -> None:
    assert docs_table() == expected_table()


def test_the_docs_table_agrees_with_help() -> None:
    """Read back from the docs page alone: per command, the codes its --help lists."""
    rows = [line for line in docs_table().splitlines() if re.match(r"\| \d+ \|", line)]
    header = docs_table().splitlines()[0].split("|")[3:-1]
    commands = [cell.strip().strip("`") for cell in header]
    for index, command in enumerate(commands):
        codes = {int(row.split("|")[1]) for row in rows if row.split("|")[3 + index].strip()}
        assert codes == set(help_exit_codes(command)), command
