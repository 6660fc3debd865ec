"""The documentation cannot drift from the commands, and the README's links lead somewhere.

``mkdocs build --strict`` (run by ./scripts/test and ./scripts/docs) checks the links inside
docs/; these tests check what it cannot: the ``--help`` texts pasted by cog, and README.md.
"""

from __future__ import annotations

import re

import pytest
from cogapp import Cog

from tests.support.project import ROOT
from vestige.cli import app
from vestige.errors import VERSION_TABLES_MISSING
from vestige.testing import ENV_PY_ELSEWHERE
from vestige.versioning.bulk import UNVERSIONED_MESSAGE

CLI_PAGE = ROOT / "docs" / "cli.md"
POINTER = re.compile(r"see (?:Vestige's )?(docs/[\w-]+\.md), ([^)]+)\)")
LINK = re.compile(r"\]\((docs/[^)#\s]+)(?:#([^)\s]+))?\)")


def test_the_help_texts_in_the_docs_are_what_the_commands_print() -> None:
    """``cog --check``: fails when a command's --help changed and docs/cli.md was not redone."""
    status = Cog().main(["cog", "--check", str(CLI_PAGE)])
    assert status == 0, "docs/cli.md is out of date: run ./scripts/docs --update"


@pytest.mark.parametrize("command", sorted(app.commands))
def test_every_command_has_its_help_in_the_docs(command: str) -> None:
    text = CLI_PAGE.read_text()
    assert f'show_help("{command}")' in text
    assert f"$ vestige {command} --help\nUsage: vestige {command} " in text


def _anchors(page: str) -> set[str]:
    """The anchors mkdocs gives a page's headings (its toc slugs)."""
    return {
        re.sub(r"\s+", "-", re.sub(r"[^\w\s-]", "", heading.lower())) for heading in _headings(page)
    }


def test_the_readme_links_to_docs_pages_that_exist() -> None:
    links = LINK.findall((ROOT / "README.md").read_text())
    assert len({page for page, _ in links}) >= 10, links
    for page, anchor in links:
        assert (ROOT / page).is_file(), page
        if anchor:
            assert anchor in _anchors(page), f"{page}#{anchor}"


def _headings(page: str) -> list[str]:
    fence = False
    found = []
    for line in (ROOT / page).read_text().splitlines():
        if line.lstrip().startswith("```"):
            fence = not fence
        if not fence and line.startswith("#"):
            found.append(line.lstrip("#").strip())
    return found


@pytest.mark.parametrize(
    "message",
    [UNVERSIONED_MESSAGE, VERSION_TABLES_MISSING, ENV_PY_ELSEWHERE],
    ids=["bulk-statements", "version-tables-missing", "env-py-elsewhere"],
)
def test_messages_point_to_a_docs_section_that_exists(message: str) -> None:
    """An error that says where to read on names a docs page and one of its headings."""
    match = POINTER.search(message)
    assert match, f"no 'see docs/PAGE.md, Section' in: {message}"
    page, section = match.groups()
    assert (ROOT / page).is_file(), page
    assert any(heading.startswith(section) for heading in _headings(page)), (page, section)
