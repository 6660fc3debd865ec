"""The history browser mounted under a prefix: in a Starlette application, and in a
Flask one through an ASGI-to-WSGI adapter. Its links, forms and cookie keep the prefix."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from a2wsgi import ASGIMiddleware
from flask import Flask
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from starlette.testclient import TestClient
from werkzeug.middleware.dispatcher import DispatcherMiddleware

import models
from tests.support.web_data import WebHistory, write_web_history
from tests.support.web_pages import form_fields, get_ok, link, parse, rows, text_of
from vestige.web import create_app


@pytest.fixture
def database(db_url: str) -> Iterator[tuple[sa.Engine, WebHistory]]:
    engine = sa.create_engine(db_url)
    models.Base.metadata.create_all(engine)
    data = write_web_history(engine, many=3)
    yield engine, data
    engine.dispose()


def test_mounted_in_starlette_every_link_keeps_the_prefix(
    database: tuple[sa.Engine, WebHistory],
) -> None:
    engine, data = database
    browser = create_app(engine, authorize=lambda request, permission: True, allow_restore=True)
    app = Starlette(
        routes=[
            Route("/", lambda request: PlainTextResponse("the application")),
            Mount("/admin/history", app=browser),
        ]
    )
    with TestClient(app) as client:
        assert client.get("/").text == "the application"
        first = client.get("/admin/history/")
        assert "Path=/admin/history" in first.headers["set-cookie"]
        home = first.text
        hrefs = [href for _, href in parse(home).links if not href.startswith("#")]
        assert hrefs and all(href.startswith("/admin/history/") for href in hrefs)
        assert "/admin/history/static/vestige.css" in home
        model = get_ok(client, link(home, "Package"))
        record = get_ok(client, link(model, f"Package {data.demo}"))
        assert rows(record)[1][6] in ("update", "insert")
        deleted = get_ok(client, "/admin/history/models/Release/deleted")
        plan = get_ok(client, link(deleted, "Preview undelete"))
        done = client.post("/admin/history/models/Release/restore", data=form_fields(plan))
        assert done.status_code == 200, text_of(done.text)
        assert "Undeleted Release" in text_of(done.text)


def test_mounted_in_flask_through_a_wsgi_adapter(
    database: tuple[sa.Engine, WebHistory],
) -> None:
    engine, data = database
    flask_app = Flask("shop")

    @flask_app.route("/")
    def index() -> str:
        return "the shop"

    browser = create_app(engine, authorize=lambda request, permission: True)
    flask_app.wsgi_app = DispatcherMiddleware(  # type: ignore[method-assign]
        flask_app.wsgi_app, {"/history": ASGIMiddleware(browser)}
    )
    client = flask_app.test_client()
    assert client.get("/").text == "the shop"
    home = client.get("/history/")
    assert home.status_code == 200
    model_link = link(home.text, "Package")
    assert "/history/models/Package" in model_link
    record = client.get(f"/history/models/Package/record?key.id={data.demo}")
    assert record.status_code == 200
    assert f"Package {data.demo}" in text_of(record.text)
    assert all(href.startswith("/history/") for _, href in parse(record.text).links[1:])
