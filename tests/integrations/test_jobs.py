"""Jobs: job_context for scripts, the @job decorator, and Celery tasks in eager mode,
on both databases."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from celery import Celery

import vestige
from tests.support.recorded import add_maintainer, recorded, write_package
from vestige.integrations import CELERY_HEADER, connect_celery, job, job_context

HEX_ID = re.compile(r"[0-9a-f]{32}")


def test_job_context_names_the_job_and_gives_it_a_request_id(schema_engine: sa.Engine) -> None:
    with job_context("nightly-import", reason="sync"):
        write_package(schema_engine, "nightly")
    with vestige.context(request_id="outer"), job_context("nested"):
        write_package(schema_engine, "nested")
    stored = recorded(schema_engine, "nightly")[2]
    assert stored.pop("request_id") is not None
    assert stored == {"reason": "sync", "job": "nightly-import"}
    assert recorded(schema_engine, "nested")[2] == {"request_id": "outer", "job": "nested"}


def test_job_decorator_runs_each_call_as_a_job(schema_engine: sa.Engine) -> None:
    @job(tenant="acme")
    def recompute(name: str) -> str:
        write_package(schema_engine, name)
        return name

    assert recompute("one") == "one"
    recompute("two")
    first, second = (recorded(schema_engine, name)[2] for name in ("one", "two"))
    assert first["job"] == second["job"] == recompute.__qualname__
    assert first["tenant"] == "acme"
    assert HEX_ID.fullmatch(first["request_id"])
    assert first["request_id"] != second["request_id"]


@pytest.fixture
def celery_app(schema_engine: sa.Engine) -> Iterator[Celery]:
    app = Celery("vestige-test", set_as_current=False)
    app.conf.task_always_eager = True
    connect_celery()
    yield app


def test_celery_task_records_its_name_id_and_the_sender_context(
    schema_engine: sa.Engine, celery_app: Celery
) -> None:
    ann = add_maintainer(schema_engine, "ann")

    @celery_app.task(name="blog.publish")
    def publish(name: str) -> None:
        write_package(schema_engine, name)

    with vestige.context(user=ann, request_id="web-1"):
        queued = publish.delay("from-web")
    alone = publish.delay("alone")

    user_id, _, stored = recorded(schema_engine, "from-web")
    assert user_id == ann
    assert stored == {"request_id": "web-1", "job": "blog.publish", "task_id": queued.id}
    user_id, _, stored = recorded(schema_engine, "alone")
    assert user_id is None
    assert stored == {"request_id": alone.id, "job": "blog.publish", "task_id": alone.id}
    assert vestige.current_context().to_dict() == {}


def test_celery_task_reads_the_context_header_a_worker_receives(
    schema_engine: sa.Engine, celery_app: Celery
) -> None:
    bob = add_maintainer(schema_engine, "bob")

    @celery_app.task(name="blog.reindex")
    def reindex(name: str) -> None:
        write_package(schema_engine, name)

    sent = {"user": bob, "request_id": "web-2", "reason": "reindex"}
    result = reindex.apply(("worker",), headers={CELERY_HEADER: sent})
    user_id, _, stored = recorded(schema_engine, "worker")
    assert user_id == bob
    assert stored == {
        "request_id": "web-2",
        "reason": "reindex",
        "job": "blog.reindex",
        "task_id": result.id,
    }
