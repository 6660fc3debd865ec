"""Restoring from the history browser: the plan first, the write on confirmation only,
a record changed in between shown as a conflict; on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

import models
from tests.support.web_data import WebHistory, write_web_history
from tests.support.web_pages import form_fields, get_ok, link, parse, rows, text_of
from vestige.history import history
from vestige.web import create_app


@dataclass
class Site:
    client: TestClient
    engine: sa.Engine
    data: WebHistory


@pytest.fixture
def site(db_url: str) -> Iterator[Site]:
    engine = sa.create_engine(db_url)
    models.Base.metadata.create_all(engine)
    data = write_web_history(engine, many=3)
    app = create_app(engine, authorize=lambda request, permission: True, allow_restore=True)
    with TestClient(app) as client:
        yield Site(client, engine, data)
    engine.dispose()


def test_undelete_shows_the_plan_then_writes_on_confirmation(site: Site) -> None:
    deleted = get_ok(site.client, "/models/Release/deleted")
    plan = get_ok(site.client, link(deleted, "Preview undelete"))
    planned = rows(plan)[1:]
    assert [row[:2] for row in planned] == [["insert", f"Release {site.data.deleted_release}"]]
    assert "version: '1.1.0'" in planned[0][2] or "version: 1.1.0" in planned[0][2]
    with Session(site.engine) as session:
        assert session.get(models.Release, site.data.deleted_release) is None  # not yet
    response = site.client.post(
        "/models/Release/restore", data=form_fields(plan), follow_redirects=False
    )
    assert response.status_code == 200, text_of(response.text)
    assert "Undeleted Release" in text_of(response.text)
    with Session(site.engine) as session:
        release = session.get(models.Release, site.data.deleted_release)
        assert release is not None and release.version == "1.1.0"
        newest = history(session, models.Release, site.data.deleted_release, limit=1)[0]
    written = get_ok(site.client, link(response.text, f"#{newest.transaction_id}"))
    assert ["Release", str(site.data.deleted_release), "insert"] in rows(written)
    assert rows(get_ok(site.client, "/models/Release/deleted"))[1:] == [["No deleted records."]]


def test_restore_to_an_older_version_with_its_relations(site: Site) -> None:
    with Session(site.engine) as session:
        versions = history(session, models.Package, site.data.demo)
    target = versions[1]
    plan = get_ok(
        site.client,
        f"/models/Package/restore?key.id={site.data.demo}&to={target.transaction_id}"
        "&relations=releases",
    )
    offered = {found["value"] for found in parse(plan).inputs if found.get("type") == "checkbox"}
    assert offered == {"license", "maintainers", "releases"}  # not Continuum's "versions"
    actions = {(row[0], row[1]) for row in rows(plan)[1:]}
    assert ("update", f"Package {site.data.demo}") in actions
    assert ("insert", f"Release {site.data.deleted_release}") not in actions  # not then yet
    assert any(label.startswith("Release") for _, label in actions)
    response = site.client.post("/models/Package/restore", data=form_fields(plan))
    assert response.status_code == 200, text_of(response.text)
    with Session(site.engine) as session:
        package = session.get(models.Package, site.data.demo)
        assert package is not None
        assert package.summary == target.values["summary"]
        assert len(package.releases) == 1


def test_a_record_changed_after_the_plan_is_a_conflict_and_nothing_is_written(
    site: Site,
) -> None:
    with Session(site.engine) as session:
        versions = history(session, models.Package, site.data.demo)
    plan = get_ok(
        site.client,
        f"/models/Package/restore?key.id={site.data.demo}&to={versions[0].transaction_id}",
    )
    with Session(site.engine) as session:
        package = session.get(models.Package, site.data.demo)
        assert package is not None
        package.summary = "edited meanwhile"
        session.commit()
    response = site.client.post("/models/Package/restore", data=form_fields(plan))
    assert response.status_code == 409
    assert "changed after this plan was shown; nothing was restored" in text_of(response.text)
    assert "edited meanwhile" in text_of(response.text)  # the new plan, shown
    with Session(site.engine) as session:
        package = session.get(models.Package, site.data.demo)
        assert package is not None and package.summary == "edited meanwhile"
    again = site.client.post("/models/Package/restore", data=form_fields(response.text))
    assert again.status_code == 200, text_of(again.text)
