"""ASGI: Starlette, FastAPI (middleware and dependency) and Litestar, each with its own
test client, recording the change context on both databases."""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import Depends, FastAPI, Header
from litestar import Litestar, post
from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, AuthenticationBackend, SimpleUser
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from tests.support.recorded import add_maintainer, recorded, write_package
from vestige.integrations import VestigeMiddleware
from vestige.integrations.fastapi import change_context

HEX_ID = re.compile(r"[0-9a-f]{32}")


class Account(SimpleUser):
    def __init__(self, user_id: int) -> None:
        super().__init__(f"user{user_id}")
        self.id = user_id


class HeaderAuth(AuthenticationBackend):
    """``Authorization: user 7`` logs in maintainer 7."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, Any] | None:
        scheme, _, value = conn.headers.get("authorization", "").partition(" ")
        if scheme != "user":
            return None
        return AuthCredentials(["authenticated"]), Account(int(value))


def starlette_app(engine: sa.Engine, **options: Any) -> Starlette:
    async def write_async(request: Request) -> PlainTextResponse:
        write_package(engine, request.path_params["name"])
        return PlainTextResponse("ok")

    def write_sync(request: Request) -> PlainTextResponse:  # run in Starlette's thread pool
        write_package(engine, request.path_params["name"])
        return PlainTextResponse("ok")

    return Starlette(
        routes=[
            Route("/async/{name}", write_async, methods=["POST"]),
            Route("/sync/{name}", write_sync, methods=["POST"]),
        ],
        # the first is the outermost: authentication sets scope["user"], then Vestige reads it
        middleware=[
            Middleware(AuthenticationMiddleware, backend=HeaderAuth()),
            Middleware(VestigeMiddleware, **options),
        ],
    )


@pytest.mark.parametrize("route", ["async", "sync"])
def test_starlette_records_user_address_and_request_id(
    schema_engine: sa.Engine, route: str
) -> None:
    ann = add_maintainer(schema_engine, "ann")
    with TestClient(starlette_app(schema_engine)) as client:
        sent = client.post(
            f"/{route}/httpx", headers={"Authorization": f"user {ann}", "X-Request-ID": "req-1"}
        )
        anonymous = client.post(f"/{route}/anon")
    assert sent.status_code == 200
    assert sent.headers["x-request-id"] == "req-1"
    assert recorded(schema_engine, "httpx") == (ann, "testclient", {"request_id": "req-1"})
    user_id, _, stored = recorded(schema_engine, "anon")
    assert user_id is None
    assert HEX_ID.fullmatch(stored["request_id"])
    assert anonymous.headers["x-request-id"] == stored["request_id"]


def test_an_implausible_request_id_is_replaced(schema_engine: sa.Engine) -> None:
    with TestClient(starlette_app(schema_engine)) as client:
        response = client.post("/async/odd", headers={"X-Request-ID": "a b;" + "x" * 300})
    stored = recorded(schema_engine, "odd")[2]["request_id"]
    assert HEX_ID.fullmatch(stored)
    assert response.headers["x-request-id"] == stored


def test_any_callable_supplies_the_values(schema_engine: sa.Engine) -> None:
    bob = add_maintainer(schema_engine, "bob")
    app = starlette_app(
        schema_engine,
        user=lambda scope: bob,
        remote_addr=lambda scope: Request(scope).headers.get("x-forwarded-for"),
        request_id=lambda scope: "fixed",
        extra=lambda scope: {"path": scope["path"]},
        echo_request_id=False,
    )
    with TestClient(app) as client:
        response = client.post("/sync/mine", headers={"X-Forwarded-For": "203.0.113.9"})
    assert "x-request-id" not in response.headers
    assert recorded(schema_engine, "mine") == (
        bob,
        "203.0.113.9",
        {"request_id": "fixed", "path": "/sync/mine"},
    )


def fastapi_app(engine: sa.Engine) -> FastAPI:
    def current_user(authorization: str = Header("")) -> int | None:
        scheme, _, value = authorization.partition(" ")
        return int(value) if scheme == "user" else None

    app = FastAPI(dependencies=[Depends(change_context(user=current_user, reason="api"))])
    app.add_middleware(VestigeMiddleware)

    @app.post("/async/{name}")
    async def write_async(name: str) -> dict[str, str]:
        write_package(engine, name)
        return {"ok": name}

    @app.post("/sync/{name}")
    def write_sync(name: str) -> dict[str, str]:
        write_package(engine, name)
        return {"ok": name}

    return app


@pytest.mark.parametrize("route", ["async", "sync"])
def test_fastapi_dependency_records_the_user_of_fastapi_authentication(
    schema_engine: sa.Engine, route: str
) -> None:
    ann = add_maintainer(schema_engine, "ann")
    with TestClient(fastapi_app(schema_engine)) as client:
        response = client.post(
            f"/{route}/api", headers={"Authorization": f"user {ann}", "X-Request-ID": "r-7"}
        )
        client.post(f"/{route}/after")  # nothing of the first request leaks into the next
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == "r-7"
    assert recorded(schema_engine, "api") == (
        ann,
        "testclient",
        {"request_id": "r-7", "reason": "api"},
    )
    user_id, _, stored = recorded(schema_engine, "after")
    assert user_id is None
    assert stored["request_id"] != "r-7"


def test_fastapi_dependency_alone_reads_the_request(schema_engine: sa.Engine) -> None:
    app = FastAPI()

    @app.post("/write/{name}", dependencies=[Depends(change_context(ticket=42))])
    async def write(name: str) -> dict[str, str]:
        write_package(engine=schema_engine, name=name)
        return {"ok": name}

    with TestClient(app) as client:
        client.post("/write/alone", headers={"X-Request-ID": "dep-only"})
    assert recorded(schema_engine, "alone") == (
        None,
        "testclient",
        {"request_id": "dep-only", "ticket": 42},
    )


def test_litestar_records_the_context_in_async_and_threaded_handlers(
    schema_engine: sa.Engine,
) -> None:
    from litestar.testing import TestClient as LitestarClient

    @post("/async")
    async def write_async() -> str:
        write_package(schema_engine, "lite")
        return "ok"

    @post("/sync", sync_to_thread=True)
    def write_sync() -> str:
        write_package(schema_engine, "thread")
        return "ok"

    app = Litestar(route_handlers=[write_async, write_sync], middleware=[VestigeMiddleware])
    with LitestarClient(app) as client:
        first = client.post("/async", headers={"X-Request-ID": "lite-1"})
        client.post("/sync", headers={"X-Request-ID": "lite-2"})
    assert first.headers["x-request-id"] == "lite-1"
    assert recorded(schema_engine, "lite") == (None, "testclient", {"request_id": "lite-1"})
    assert recorded(schema_engine, "thread") == (None, "testclient", {"request_id": "lite-2"})
