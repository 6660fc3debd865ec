"""The history browser in a real browser: Chromium (Debian's package) driven by
Playwright, against ``vestige serve --allow-restore`` on SQLite and PostgreSQL.

Without ``/usr/bin/chromium`` these tests skip (``apt-get install chromium``;
``./scripts/test`` installs it when ``CI=true``). With ``VESTIGE_SCREENSHOTS=1`` they save
the screenshots of docs/web.md into docs/images/, light and dark.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

import models
from tests.support.live_server import vestige_serve
from tests.support.project import ROOT
from tests.support.web_data import WebHistory, write_web_history
from vestige.history import history

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

if not CHROMIUM.exists():
    pytest.skip(
        f"no Chromium at {CHROMIUM}: apt-get install chromium "
        "(./scripts/test installs it when CI=true)",
        allow_module_level=True,
    )

from playwright.sync_api import Browser, expect, sync_playwright  # noqa: E402


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def served(db_url: str) -> Iterator[tuple[str, sa.Engine, WebHistory]]:
    engine = sa.create_engine(db_url)
    models.Base.metadata.create_all(engine)
    data = write_web_history(engine, many=60)
    with vestige_serve(db_url, "--allow-restore") as base:
        yield base, engine, data
    engine.dispose()


def screenshots(tmp_path: Path, backend: str) -> Path:
    """docs/images when asked for (from the SQLite run only), else the test's own folder."""
    if os.environ.get("VESTIGE_SCREENSHOTS") == "1" and backend == "sqlite":
        return ROOT / "docs" / "images"
    return tmp_path


def test_click_through_model_record_diff_transaction_and_undelete(
    browser: Browser,
    served: tuple[str, sa.Engine, WebHistory],
    backend: str,
    tmp_path: Path,
) -> None:
    base, engine, data = served
    shots = screenshots(tmp_path, backend)
    context = browser.new_context(
        viewport={"width": 1280, "height": 800}, locale="en-GB", timezone_id="Asia/Tokyo"
    )
    page = context.new_page()
    page.goto(f"{base}/")
    expect(page.get_by_role("heading", name="Versioned models")).to_be_visible()
    # times in UTC on the page, local time (here Tokyo, UTC+9) on hover
    oldest = page.locator("tbody tr", has_text="License").locator("time")
    expect(oldest).to_have_text("2026-01-01 01:00:00 UTC")
    expect(oldest).to_have_attribute("title", re.compile(r"10:00:00 \(your local time\)"))
    page.screenshot(path=shots / "web-models-light.png", full_page=True)

    page.get_by_role("link", name="Package", exact=True).click()
    expect(page.get_by_role("heading", name="Package")).to_be_visible()
    page.get_by_label("id").fill(str(data.demo))
    page.get_by_role("button", name="Open").click()
    expect(page.get_by_role("heading", name=f"Package {data.demo}")).to_be_visible()

    # pick two versions, A the oldest and B the newest, and compare them
    page.get_by_role("radio", name=re.compile(r"^A: ")).last.check()
    page.get_by_role("radio", name=re.compile(r"^B: ")).first.check()
    page.screenshot(path=shots / "web-record-light.png", full_page=True)
    page.get_by_role("button", name="Compare A and B").click()
    expect(page.get_by_role("heading", name=re.compile("what changed"))).to_be_visible()
    changed = page.locator("tr.changed th code")
    expect(changed).to_contain_text(["summary"])
    assert "license_id" in changed.all_inner_texts()
    page.screenshot(path=shots / "web-diff-light.png", full_page=True)

    # open the newer version's transaction
    newest = page.get_by_role("link", name=re.compile(r"^#\d+$")).nth(1)
    newest.click()
    expect(page.get_by_role("heading", name=re.compile(r"^Transaction \d+$"))).to_be_visible()
    expect(page.locator("tbody")).to_contain_text("Package")
    expect(page.locator("tbody")).to_contain_text("Release")

    # find the deleted release, preview its undelete, confirm it
    page.get_by_role("link", name="Models", exact=True).click()
    page.locator("tbody tr", has_text="Release").get_by_role("link", name="1").click()
    row = page.locator("tbody tr", has_text=f"Release {data.deleted_release}")
    expect(row).to_contain_text("1.1.0")
    row.get_by_role("link", name="Preview undelete").click()
    expect(page.get_by_role("heading", name=re.compile("^Undelete Release"))).to_be_visible()
    expect(page.locator("table.plan tbody tr")).to_have_count(1)
    expect(page.locator("table.plan tbody")).to_contain_text("insert")
    page.screenshot(path=shots / "web-undelete-light.png", full_page=True)
    with Session(engine) as session:
        assert session.get(models.Release, data.deleted_release) is None
    page.get_by_role("button", name=re.compile("^Confirm")).click()
    expect(page.get_by_role("status")).to_contain_text("wrote 1 row(s)")
    with Session(engine) as session:
        release = session.get(models.Release, data.deleted_release)
        assert release is not None and release.version == "1.1.0"
    page.get_by_role("status").get_by_role("link").click()
    expect(page.locator("tbody")).to_contain_text("Release")
    context.close()


# The page behaves the same over either database: this one runs on SQLite only.
@pytest.mark.parametrize(
    "backend", [pytest.param("sqlite", marks=pytest.mark.sqlite)], indirect=True
)
def test_keyboard_phone_and_dark_mode(
    browser: Browser,
    served: tuple[str, sa.Engine, WebHistory],
    backend: str,
    tmp_path: Path,
) -> None:
    base, engine, data = served
    shots = screenshots(tmp_path, backend)
    with Session(engine) as session:
        versions = history(session, models.Package, data.demo)
    first, last = versions[0].transaction_id, versions[-1].transaction_id

    # the keyboard: "/" jumps to the search form, Enter submits it
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(f"{base}/search")
    page.keyboard.press("/")
    expect(page.locator("input[name=user]")).to_be_focused()
    page.keyboard.type(str(data.alice))
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"user={data.alice}"))
    cells = page.locator("tbody tr td:nth-child(3)")
    assert set(cells.all_inner_texts()) == {"alice"}
    # Tab from the top reaches the skip link first
    page.goto(f"{base}/")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    context.close()

    # a phone, in dark mode: nothing wider than the screen but the tables' own scrolling
    phone = browser.new_context(
        viewport={"width": 390, "height": 844}, color_scheme="dark", is_mobile=True
    )
    page = phone.new_page()
    page.goto(f"{base}/models/Package/record?key.id={data.demo}")
    expect(page.get_by_role("heading", name=f"Package {data.demo}")).to_be_visible()
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(21, 24, 28)"
    page.screenshot(path=shots / "web-record-phone-dark.png", full_page=True)
    phone.close()

    dark = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme="dark")
    page = dark.new_page()
    page.goto(f"{base}/models/Package/diff?key.id={data.demo}&a={first}&b={last}")
    expect(page.locator("tr.changed").first).to_be_visible()
    page.screenshot(path=shots / "web-diff-dark.png", full_page=True)
    page.goto(f"{base}/")
    page.screenshot(path=shots / "web-models-dark.png", full_page=True)
    dark.close()
