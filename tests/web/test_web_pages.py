"""The history browser's read-only pages, through Starlette's test client, on SQLite and
PostgreSQL: what each page shows is what the database holds."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

import models
from tests.support.backends import BACKEND_PARAMS
from tests.support.history_databases import module_database
from tests.support.web_data import (
    EPOCH,
    LONG_UNICODE,
    MANY,
    QUOTES,
    SCRIPT,
    WebHistory,
    hour,
    write_web_history,
)
from tests.support.web_pages import get_ok, link, parse, query_of, rows, text_of
from vestige.history import history
from vestige.web import create_app

PAGE = 50


@dataclass
class Site:
    client: TestClient
    engine: sa.Engine
    data: WebHistory


@pytest.fixture(scope="module", params=BACKEND_PARAMS)
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    with module_database(request, tmp_path_factory) as url:
        engine = sa.create_engine(url)
        data = write_web_history(engine)
        app = create_app(engine, authorize=lambda request, permission: True, page_size=PAGE)
        with TestClient(app) as client:
            yield Site(client, engine, data)
        engine.dispose()


def test_models_page_counts_what_the_tables_hold(site: Site) -> None:
    html = get_ok(site.client, "/")
    found = {row[0]: row[1:] for row in rows(html)[1:]}
    assert set(found) == {"License", "Maintainer", "Package", "Release"}
    with Session(site.engine) as session:
        for name, model in [("Package", models.Package), ("Release", models.Release)]:
            live = session.scalar(sa.select(sa.func.count()).select_from(model))
            version_cls = {"Package": models.PackageVersion, "Release": models.ReleaseVersion}[name]
            versions = session.scalar(sa.select(sa.func.count()).select_from(version_cls))
            assert found[name][:2] == [str(live), str(versions)]
    assert found["Release"][2] == "1"  # the deleted release
    assert found["Package"][2] == "0"
    assert found["License"][3] == f"{hour(1).isoformat(sep=' ')} UTC"


def test_a_record_timeline_pages_through_every_version_newest_first(site: Site) -> None:
    url = f"/models/Package/record?key.id={site.data.many}"
    seen: list[str] = []
    pages = 0
    while url:
        html = get_ok(site.client, url)
        pages += 1
        body = [row for row in rows(html) if row and row[2].startswith("#")]
        seen.extend(row[2] for row in body)
        older = [href for label, href in parse(html).links if label == "Older →"]
        url = older[0] if older else ""
        assert pages <= MANY // PAGE + 1
    with Session(site.engine) as session:
        versions = history(session, models.Package, site.data.many)
    assert seen == [f"#{v.transaction_id}" for v in reversed(versions)]
    assert pages == -(-MANY // PAGE)


def test_the_newer_link_leads_back_to_the_page_before(site: Site) -> None:
    first = get_ok(site.client, f"/models/Package/record?key.id={site.data.many}")
    second = get_ok(site.client, link(first, "Older →"))
    back = get_ok(site.client, link(second, "← Newer"))
    assert rows(back) == rows(first)


def test_a_version_shows_who_where_and_what_changed(site: Site) -> None:
    html = get_ok(site.client, f"/models/Package/record?key.id={site.data.demo}")
    with Session(site.engine) as session:
        versions = history(session, models.Package, site.data.demo)
    body = {row[2]: row for row in rows(html) if row and row[2].startswith("#")}
    assert len(body) == len(versions)
    for version in versions:
        row = body[f"#{version.transaction_id}"]
        assert row[3] == f"{version.issued_at.isoformat(sep=' ')} UTC"
        assert row[4] == version.user
        assert row[5] == (version.remote_addr or "")
        assert row[6] == version.operation.value
        for change in version.changes:
            assert change.field in row[7]
    # the summary edit by bob: the old and the new value, marked up as such
    assert '<del><span class="value">HTTP client</span></del>' in html
    assert '<time datetime="2026-01-01T' in html


def test_a_diff_marks_exactly_the_fields_that_differ(site: Site) -> None:
    with Session(site.engine) as session:
        versions = history(session, models.Package, site.data.demo)
    first, last = versions[0], versions[-1]
    html = get_ok(
        site.client,
        f"/models/Package/diff?key.id={site.data.demo}"
        f"&a={last.transaction_id}&b={first.transaction_id}",
    )
    changed = {row[0].split()[0] for row in rows(html)[1:] if "changed" in row[0]}
    expected = {name for name in last.values if first.values[name] != last.values[name]}
    assert changed == expected and changed
    assert f"#{first.transaction_id} (insert)" in text_of(html)


def test_the_record_as_of_a_transaction_and_a_time(site: Site) -> None:
    with Session(site.engine) as session:
        versions = history(session, models.Package, site.data.demo)
    second = versions[1]
    by_tx = get_ok(
        site.client, f"/models/Package/as-of?key.id={site.data.demo}&at={second.transaction_id}"
    )
    values = {row[0]: row[1] for row in rows(by_tx)[1:]}
    assert values["summary"] == second.values["summary"]
    moment = hour(second.transaction_id).isoformat()
    by_time = get_ok(site.client, f"/models/Package/as-of?key.id={site.data.demo}&at={moment}")
    assert rows(by_time) == rows(by_tx)
    before = get_ok(
        site.client, f"/models/Package/as-of?key.id={site.data.demo}&at={EPOCH.isoformat()}"
    )
    assert "did not exist then" in text_of(before)


def test_a_transaction_page_lists_every_record_it_touched(site: Site) -> None:
    with Session(site.engine) as session:
        tx_id = history(session, models.Package, site.data.demo)[1].transaction_id
        release = session.scalar(
            sa.select(models.ReleaseVersion.id).where(models.ReleaseVersion.transaction_id == tx_id)
        )
    html = get_ok(site.client, f"/transactions/{tx_id}")
    touched = {(row[0], row[1], row[2]) for row in rows(html)[1:]}
    assert ("Package", str(site.data.demo), "update") in touched
    assert ("Release", str(release), "insert") in touched
    assert ("package_maintainer", f"{site.data.demo},2", "insert") in touched
    assert "198.51.100.7" in text_of(html)
    record = link(html, str(site.data.demo))
    # the record's page that starts at the version this transaction wrote
    assert query_of(record) == {
        "key.id": [str(site.data.demo)],
        "before": [f'[{tx_id + 1}, "{site.data.demo}"]'],
    }
    assert rows(get_ok(site.client, record))[1][2] == f"#{tx_id}"


def test_deleted_records_link_their_history(site: Site) -> None:
    html = get_ok(site.client, "/models/Release/deleted")
    body = rows(html)[1:]
    assert [row[0] for row in body] == [f"Release {site.data.deleted_release}"]
    assert "restore is off" in body[0][5]
    timeline = get_ok(site.client, link(html, f"Release {site.data.deleted_release}"))
    assert rows(timeline)[1][6] == "delete"


def test_search_by_user_time_range_and_model(site: Site) -> None:
    by_user = get_ok(site.client, f"/search?user={site.data.alice}&model=Release")
    body = rows(by_user)[1:]
    assert body and all(row[2] == "alice" for row in body)
    assert all("Release" in row[4] for row in body)
    since, until = hour(5).isoformat(), hour(8).isoformat()
    window = get_ok(site.client, f"/search?since={since}&until={until}")
    assert [row[0] for row in rows(window)[1:]] == ["#7", "#6", "#5"]


def test_search_pages_cover_every_transaction_once(site: Site) -> None:
    url = "/search"
    seen: list[str] = []
    while url:
        html = get_ok(site.client, url)
        seen.extend(row[0] for row in rows(html)[1:])
        older = [href for label, href in parse(html).links if label == "Older →"]
        url = older[0] if older else ""
    with Session(site.engine) as session:
        ids = session.scalars(
            sa.select(models.Transaction.id).order_by(models.Transaction.id.desc())
        )
        assert seen == [f"#{tx_id}" for tx_id in ids]


def test_hostile_values_come_back_as_text(site: Site) -> None:
    html = get_ok(site.client, f"/models/Package/record?key.id={site.data.hostile}")
    for value in (SCRIPT, QUOTES):
        assert value not in html
        assert value in text_of(html)
    assert "<script>alert" not in html
    assert LONG_UNICODE.strip() in text_of(html)
    # the change context (reason, request id) is shown with the transaction, as text too
    assert "reason" in text_of(html) and "request_id" in text_of(html)
    for page in ("/models/Package", f"/search?user={site.data.alice}", "/transactions/1"):
        assert "<script>alert" not in get_ok(site.client, page)


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/models/Nope", 404, "unknown model 'Nope'"),
        ("/models/Package/record", 400, "give key.id in the address"),
        ("/models/Package/record?key.id=abc", 400, "give key.id in the address"),
        ("/models/Package/record?key.id=99999", 404, "no history for Package 99999"),
        ("/models/Package/record?key.id=1&before=%5B", 400, "bad page position"),
        ("/models/Package/diff?key.id=1&a=x&b=1", 400, "bad transaction id 'x'"),
        ("/models/Package/as-of?key.id=1&at=yesterday", 400, "bad moment 'yesterday'"),
        ("/transactions/999999", 404, "no transaction 999999"),
        ("/search?user=bob", 400, "bad user id 'bob'"),
        ("/models/Package/restore?key.id=1", 403, "restoring from the browser is off"),
        ("/nowhere", 404, "no such page: /nowhere"),
    ],
)
def test_bad_addresses_say_what_was_wrong(site: Site, path: str, status: int, words: str) -> None:
    response = site.client.get(path)
    assert response.status_code == status
    assert words in text_of(response.text)
