"""WSGI: the Flask extension (with Flask-Login, and with any callable) and the plain
WSGI middleware, each through Werkzeug's test client, on both databases."""

from __future__ import annotations

import re
from typing import Any

import flask
import sqlalchemy as sa
from flask_login import LoginManager, UserMixin, login_user
from werkzeug.test import Client
from werkzeug.wrappers import Request, Response

from tests.support.recorded import add_maintainer, recorded, write_package
from vestige.integrations import VestigeWSGIMiddleware
from vestige.integrations.flask import Vestige

HEX_ID = re.compile(r"[0-9a-f]{32}")


class Account(UserMixin):  # type: ignore[misc]
    def __init__(self, user_id: int) -> None:
        self.id = user_id


def flask_app(engine: sa.Engine, **options: Any) -> flask.Flask:
    app = flask.Flask(__name__)
    app.secret_key = "test"
    logins = LoginManager(app)
    logins.user_loader(lambda user_id: Account(int(user_id)))
    Vestige(app, **options)

    @app.post("/login/<int:user_id>")
    def login(user_id: int) -> str:
        login_user(Account(user_id))
        return "in"

    @app.post("/write/<name>")
    def write(name: str) -> str:
        write_package(engine, name)
        return "ok"

    return app


def test_flask_records_the_flask_login_user_address_and_request_id(
    schema_engine: sa.Engine,
) -> None:
    ann = add_maintainer(schema_engine, "ann")
    app = flask_app(schema_engine)
    with app.test_client() as client:
        anonymous = client.post("/write/anon", environ_base={"REMOTE_ADDR": "198.51.100.4"})
        client.post(f"/login/{ann}")
        sent = client.post("/write/flask", headers={"X-Request-ID": "fl-1"})
    assert sent.headers["X-Request-ID"] == "fl-1"
    assert recorded(schema_engine, "flask") == (ann, "127.0.0.1", {"request_id": "fl-1"})
    user_id, address, stored = recorded(schema_engine, "anon")
    assert (user_id, address) == (None, "198.51.100.4")
    assert HEX_ID.fullmatch(stored["request_id"])
    assert anonymous.headers["X-Request-ID"] == stored["request_id"]


def test_flask_takes_any_callable(schema_engine: sa.Engine) -> None:
    bob = add_maintainer(schema_engine, "bob")
    app = flask_app(
        schema_engine,
        user=lambda: bob,
        remote_addr=lambda: flask.request.headers.get("X-Real-IP"),
        request_id=lambda: "from-callable",
        extra=lambda: {"endpoint": flask.request.endpoint},
    )
    with app.test_client() as client:
        client.post("/write/mine", headers={"X-Real-IP": "203.0.113.5"})
    assert recorded(schema_engine, "mine") == (
        bob,
        "203.0.113.5",
        {"request_id": "from-callable", "endpoint": "write"},
    )


def test_flask_without_flask_login_records_no_user(schema_engine: sa.Engine) -> None:
    app = flask.Flask(__name__)
    Vestige().init_app(app)

    @app.post("/write")
    def write() -> str:
        write_package(schema_engine, "plain")
        return "ok"

    app.test_client().post("/write", headers={"X-Request-ID": "p-1"})
    assert recorded(schema_engine, "plain") == (None, "127.0.0.1", {"request_id": "p-1"})


def test_plain_wsgi_middleware_reads_the_environ(schema_engine: sa.Engine) -> None:
    carol = add_maintainer(schema_engine, "carol")

    def application(environ: dict[str, Any], start_response: Any) -> Any:
        write_package(schema_engine, Request(environ).path.strip("/"))
        return Response("ok")(environ, start_response)

    client = Client(VestigeWSGIMiddleware(application))
    response = client.post(
        "/wsgi",
        headers={"X-Request-ID": "w-1"},
        environ_base={"REMOTE_USER": str(carol), "REMOTE_ADDR": "192.0.2.99"},
    )
    assert response.headers["X-Request-ID"] == "w-1"
    assert recorded(schema_engine, "wsgi") == (carol, "192.0.2.99", {"request_id": "w-1"})

    tagged = VestigeWSGIMiddleware(
        application,
        user=lambda environ: None,
        extra=lambda environ: {"method": environ["REQUEST_METHOD"]},
        echo_request_id=False,
    )
    response = Client(tagged).post("/tagged")
    assert "X-Request-ID" not in response.headers
    user_id, _, stored = recorded(schema_engine, "tagged")
    assert user_id is None
    assert stored["method"] == "POST"
    assert HEX_ID.fullmatch(stored["request_id"])
