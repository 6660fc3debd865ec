"""The change context: stored with each transaction, read back by history and changes.

Runs on a schema built by the project's migrations, so the ``transaction.context``
revision is what these tests write to.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.orm import Session

import models
import vestige
from vestige.cli import app
from vestige.errors import ConfigError
from vestige.history import changes, history
from vestige.versioning import actor, current_context, set_actor


def _maintainer(session: Session, name: str) -> int:
    person = models.Maintainer(username=name, email=f"{name}@example.org")
    session.add(person)
    session.commit()
    return person.id


def _write(engine: sa.Engine, name: str, summary: str = "s") -> int:
    """Insert or update the package ``name`` in a session of its own; its id."""
    with Session(engine) as session:
        package = session.scalar(sa.select(models.Package).where(models.Package.name == name))
        if package is None:
            package = models.Package(name=name, summary=summary)
            session.add(package)
        package.summary = summary
        session.commit()
        return package.id


def _stored(engine: sa.Engine) -> list[tuple[Any, Any, Any]]:
    """Every transaction's user_id, remote_addr and context, in id order."""
    tx = models.Transaction.__table__
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(tx.c.user_id, tx.c.remote_addr, tx.c.context).order_by(tx.c.id)
        )
        return [tuple(row) for row in rows]


def test_context_is_stored_in_its_columns_and_read_by_history(
    migrated_engine: sa.Engine,
) -> None:
    with Session(migrated_engine) as session:
        ann = _maintainer(session, "ann")
    with vestige.context(
        user=ann, remote_addr="192.0.2.7", reason="import", request_id="r-1", batch=3, dry=False
    ):
        package_id = _write(migrated_engine, "httpx")
    with vestige.context(reason="typo"):
        _write(migrated_engine, "httpx", "fixed")

    assert _stored(migrated_engine)[1:] == [
        (ann, "192.0.2.7", {"reason": "import", "request_id": "r-1", "batch": 3, "dry": False}),
        (None, None, {"reason": "typo"}),
    ]
    with Session(migrated_engine) as session:
        first, second = history(session, models.Package, package_id)
    assert (first.user, first.remote_addr) == ("ann", "192.0.2.7")
    assert first.context == {"reason": "import", "request_id": "r-1", "batch": 3, "dry": False}
    assert second.to_dict()["context"] == {"reason": "typo"}
    assert second.user_id is None


def test_no_context_stores_null_not_an_empty_object(migrated_engine: sa.Engine) -> None:
    _write(migrated_engine, "plain")
    tx = models.Transaction.__table__
    with migrated_engine.connect() as conn:
        nulls = conn.scalar(sa.select(sa.func.count()).where(tx.c.context.is_(None)))
    assert nulls == 1
    with Session(migrated_engine) as session:
        (only,) = changes(session)
    assert only.context == {}
    assert only.to_dict()["context"] == {}


def test_contexts_nest_and_a_session_context_is_laid_over_the_block(
    schema_engine: sa.Engine,
) -> None:
    with Session(schema_engine) as session:
        ann, bob = _maintainer(session, "ann"), _maintainer(session, "bob")
    with vestige.context(user=ann, request_id="outer", tenant="acme"):
        with vestige.context(reason="inner", tenant="beta") as inner:
            assert inner.to_dict() == {
                "user": ann,
                "request_id": "outer",
                "reason": "inner",
                "tenant": "beta",
            }
            _write(schema_engine, "a")
        with Session(schema_engine) as session:
            vestige.set_context(session, user=bob, reason="session")
            session.add(models.Package(name="b"))
            session.commit()
        _write(schema_engine, "c")
    assert current_context().to_dict() == {}
    assert _stored(schema_engine)[2:] == [
        (ann, None, {"request_id": "outer", "reason": "inner", "tenant": "beta"}),
        (bob, None, {"request_id": "outer", "reason": "session", "tenant": "acme"}),
        (ann, None, {"request_id": "outer", "tenant": "acme"}),
    ]


def test_actor_and_set_actor_are_the_context_first_forms(schema_engine: sa.Engine) -> None:
    with Session(schema_engine) as session:
        ann, bob = _maintainer(session, "ann"), _maintainer(session, "bob")
    with actor(user_id=ann, remote_addr="10.0.0.1") as who:
        assert (who.user_id, who.remote_addr) == (ann, "10.0.0.1")
        assert current_context().to_dict() == {"user": ann, "remote_addr": "10.0.0.1"}
        with vestige.context(request_id="r-9"):
            _write(schema_engine, "a")
    with Session(schema_engine) as session:
        set_actor(session, user_id=bob)
        session.add(models.Package(name="b"))
        session.commit()
    assert _stored(schema_engine)[2:] == [
        (ann, "10.0.0.1", {"request_id": "r-9"}),
        (bob, None, None),
    ]


def test_context_crosses_await_tasks_and_copied_thread_contexts_but_not_plain_threads(
    schema_engine: sa.Engine,
) -> None:
    async def in_tasks() -> None:
        with vestige.context(request_id="async"):
            await asyncio.sleep(0)
            await asyncio.gather(
                asyncio.to_thread(_write, schema_engine, "to-thread"),
                asyncio.create_task(asyncio.to_thread(_write, schema_engine, "task")),
            )

    asyncio.run(in_tasks())
    with vestige.context(request_id="threads"):
        copied = contextvars.copy_context()
        thread = threading.Thread(target=copied.run, args=(_write, schema_engine, "copied"))
        thread.start()
        thread.join()
        plain = threading.Thread(target=_write, args=(schema_engine, "plain"))
        plain.start()
        plain.join()
    with Session(schema_engine) as session:
        found = {
            name: history(session, models.Package, _write(schema_engine, name))[0].context
            for name in ("to-thread", "task", "copied", "plain")
        }
    assert found == {
        "to-thread": {"request_id": "async"},
        "task": {"request_id": "async"},
        "copied": {"request_id": "threads"},
        "plain": {},
    }


FILTERS: list[tuple[dict[str, Any], list[str]]] = [
    ({"request_id": "r-1"}, ["a"]),
    ({"reason": "bulk fix"}, ["b", "c"]),
    ({"reason": "bulk fix", "batch": 2}, ["c"]),
    ({"urgent": True}, ["b"]),
    ({"urgent": False}, ["c"]),
    ({"ratio": 0.5}, ["a"]),
    ({"reason": None}, ["a", "d"]),
    ({"user": "USER"}, ["b"]),
    ({"remote_addr": "192.0.2.1"}, ["d"]),
    ({"request_id": "nobody"}, []),
]


def test_changes_filters_on_the_context(schema_engine: sa.Engine) -> None:
    with Session(schema_engine) as session:
        ann = _maintainer(session, "ann")
    with vestige.context(request_id="r-1", ratio=0.5):
        _write(schema_engine, "a")
    with vestige.context(user=ann, reason="bulk fix", batch=1, urgent=True):
        _write(schema_engine, "b")
    with vestige.context(reason="bulk fix", batch=2, urgent=False):
        _write(schema_engine, "c")
    with vestige.context(remote_addr="192.0.2.1"):
        _write(schema_engine, "d")
    found: dict[str, list[str]] = {}
    expected: dict[str, list[str]] = {}
    with Session(schema_engine) as session:
        names = dict(session.execute(sa.select(models.Package.id, models.Package.name)).all())
        for wanted, names_expected in FILTERS:
            wanted = {k: ann if v == "USER" else v for k, v in wanted.items()}
            listed = changes(session, context=wanted, model=models.Package)
            found[repr(wanted)] = [names[tx.touched[0].key[0]] for tx in listed]
            expected[repr(wanted)] = names_expected
    assert found == expected


def test_bad_context_values_are_refused_with_one_line(schema_engine: sa.Engine) -> None:
    refused = pytest.raises(ConfigError, match=r"^change context when=.*pass JSON values$")
    with refused, vestige.context(when=object()):
        pass
    with Session(schema_engine) as session, pytest.raises(ConfigError, match="JSON values"):
        vestige.set_context(session, user={1, 2})
    with Session(schema_engine) as session, pytest.raises(ConfigError, match="compare a string"):
        changes(session, context={"tags": ["a"]})
    assert current_context().to_dict() == {}


def test_vestige_history_shows_the_context_in_its_table_and_json(
    migrated_engine: sa.Engine, db_url: str
) -> None:
    with vestige.context(request_id="req-42", reason="import"):
        package_id = _write(migrated_engine, "rich")
    _write(migrated_engine, "rich", "again")
    runner = CliRunner()
    env = {"DATABASE_URL": db_url}
    table = runner.invoke(app, ["history", "Package", str(package_id)], env=env)
    assert table.exit_code == 0, table.output
    assert "context" in table.output
    assert "request_id='req-42'" in table.output
    assert "reason='import'" in table.output
    as_json = runner.invoke(app, ["history", "Package", str(package_id), "--json"], env=env)
    versions = json.loads(as_json.stdout)["versions"]
    assert [v["context"] for v in versions] == [{"request_id": "req-42", "reason": "import"}, {}]


def test_vestige_history_has_no_context_column_when_none_was_recorded(
    migrated_engine: sa.Engine, db_url: str
) -> None:
    package_id = _write(migrated_engine, "bare")
    table = CliRunner().invoke(
        app, ["history", "Package", str(package_id)], env={"DATABASE_URL": db_url}
    )
    assert table.exit_code == 0, table.output
    assert "context" not in table.output
