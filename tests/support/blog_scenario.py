"""Drive the example FastAPI blog through its own API with FastAPI's TestClient.

    python -m tests.support.blog_scenario DATABASE_URL RESULTS.json

Runs in a process of its own: the blog declares its own versioned models, and
Continuum's manager is global to a process (see :mod:`tests.support.zoo_models`). Writes
each response (status, the request id header, the JSON body) to RESULTS.json, which
``tests/examples/test_fastapi_blog.py`` asserts.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.support.project import ROOT

ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


def main(database_url: str, results_path: str) -> None:
    sys.path.insert(0, str(ROOT / "examples"))
    from fastapi_blog.app import create_app, create_schema

    url = sa.make_url(database_url)
    url = url.set(drivername=ASYNC_DRIVERS[url.get_backend_name()])
    app = create_app(url.render_as_string(hide_password=False))
    asyncio.run(create_schema(app))
    results: dict[str, Any] = {}

    def record(name: str, response: Any) -> Any:
        body = response.json() if response.content else None
        results[name] = {
            "status": response.status_code,
            "request_id": response.headers.get("x-request-id"),
            "body": body,
        }
        return body

    with TestClient(app) as client:
        ann = {"X-User": "ann", "X-Request-ID": "req-create"}
        post = record("create", client.post("/posts", json={"title": "Hello"}, headers=ann))
        path = f"/posts/{post['id']}"
        bob = {"X-User": "bob"}
        record(
            "edit", client.patch(path, json={"title": "Hello, world", "body": "Hi"}, headers=bob)
        )
        record("comment", client.post(f"{path}/comments", json={"body": "Nice"}))
        record("history", client.get(f"{path}/history"))
        edit_id = results["edit"]["request_id"]
        record("changes of edit", client.get("/changes", params={"request_id": edit_id}))
        record("delete", client.delete(path, headers={"X-User": "ann"}))
        record("history after delete", client.get(f"{path}/history"))
        record("no history", client.get("/posts/999/history"))
    with open(results_path, "w", encoding="utf-8") as out:
        json.dump(results, out, indent=2)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
