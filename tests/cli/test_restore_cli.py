"""``vestige restore``: a plan of every row it writes, the transaction it really wrote,
``--json``, and no prompt off a terminal.

The reference models: a package whose release (one-to-many) and second maintainer
(many-to-many) were added after the transaction it is restored to.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta

import click
import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from sqlalchemy.orm import Session

import models
from tests.support.project import ROOT
from vestige.cli import app
from vestige.cli import history as cli_history
from vestige.cli.history import RESTORE_NEEDS_YES
from vestige.errors import RestoreConflict
from vestige.history.restore import CHANGED

EPOCH = datetime(2026, 1, 1, 9, 0)


@pytest.fixture(autouse=True)
def _in_project(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


@pytest.fixture
def run(db_url: str) -> Callable[..., Result]:
    def invoke(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(app, list(args), env={"DATABASE_URL": db_url}, input=input)

    return invoke


@pytest.fixture
def package_id(schema_engine: sa.Engine) -> int:
    """tx 1: ann and bob; tx 2: package click kept by ann; tx 3: release 8.0 and bob added."""
    with Session(schema_engine) as session:
        ann = models.Maintainer(username="ann", email="ann@example.org")
        bob = models.Maintainer(username="bob", email="bob@example.org")
        session.add_all([ann, bob])
        session.commit()
        package = models.Package(name="click", summary="CLI", created_at=EPOCH, maintainers=[ann])
        session.add(package)
        session.commit()
        package.releases.append(models.Release(version="8.0", released_at=EPOCH))
        package.maintainers.append(bob)
        session.commit()
        transaction = models.Transaction.__table__
        for tx_id in (1, 2, 3):
            session.execute(
                transaction.update()
                .where(transaction.c.id == tx_id)
                .values(issued_at=EPOCH + timedelta(hours=tx_id))
            )
        session.commit()
        return package.id


def dump(engine: sa.Engine) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, to show that a refused command changed nothing."""
    with engine.connect() as conn:
        return {
            table.name: sorted(tuple(row) for row in conn.execute(sa.select(table)))
            for table in models.Base.metadata.sorted_tables
        }


def written_in(engine: sa.Engine, table: str, operation_type: int) -> list[int]:
    """The transactions that wrote versions of one kind into a version table."""
    with engine.connect() as conn:
        return list(
            conn.scalars(
                sa.text(
                    f"SELECT transaction_id FROM {table} WHERE operation_type = :op "
                    "ORDER BY transaction_id"
                ),
                {"op": operation_type},
            )
        )


RELEASE_PLAN = """\
would restore Package 1 to its version of transaction 2 (2026-01-01 11:00:00, no user)
  delete Release 1
    id: 1
    package_id: 1
    version: '8.0'
    requires_python: None
    yanked: False
    released_at: 2026-01-01 09:00:00
  with relations: releases (as they were at transaction 2)
"""


def test_restore_plan_lists_a_related_row_it_deletes_and_names_the_real_transaction(
    run: Callable[..., Result], package_id: int, schema_engine: sa.Engine
) -> None:
    """Issue 14, item 2: the plan said nothing of the delete, the report named tx 2."""
    before = dump(schema_engine)
    dry = run("restore", "Package", str(package_id), "--to", "2", "--with", "releases", "--dry-run")
    assert (dry.exit_code, dry.stdout, dry.stderr) == (0, RELEASE_PLAN, "")
    assert dump(schema_engine) == before

    done = run("restore", "Package", str(package_id), "--to", "2", "--with", "releases", "--yes")
    assert done.exit_code == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "\n".join(lines[:-1]) + "\n" == RELEASE_PLAN.replace("would restore", "restore")
    deleted_in = written_in(schema_engine, "release_version", 2)
    assert len(deleted_in) == 1
    assert lines[-1] == (
        f"restored Package 1 to its version of transaction 2, in transaction {deleted_in[0]}"
    )
    with Session(schema_engine) as session:
        assert session.get_one(models.Package, package_id).releases == []


def test_restore_plan_lists_association_rows(
    run: Callable[..., Result], package_id: int, schema_engine: sa.Engine
) -> None:
    dry = run(
        "restore", "Package", str(package_id), "--to", "2", "--with", "maintainers", "--dry-run"
    )
    assert dry.exit_code == 0, dry.stderr
    assert dry.stdout.splitlines()[1:] == [
        "  delete package_maintainer 1,2",
        "    package_id: 1",
        "    maintainer_id: 2",
        "  with relations: maintainers (as they were at transaction 2)",
    ]
    done = run("restore", "Package", str(package_id), "--to", "2", "--with", "maintainers", "-y")
    assert done.exit_code == 0, done.stderr
    unlinked_in = written_in(schema_engine, "package_maintainer_version", 2)
    assert done.stdout.splitlines()[-1].endswith(f"in transaction {unlinked_in[0]}")
    with Session(schema_engine) as session:
        package = session.get_one(models.Package, package_id)
        assert [m.username for m in package.maintainers] == ["ann"]


def test_restore_json_prints_the_plan_and_the_result(
    run: Callable[..., Result], package_id: int, schema_engine: sa.Engine
) -> None:
    args = ("restore", "Package", str(package_id), "--to", "2", "--with", "releases", "--json")
    dry = run(*args, "--dry-run")
    assert (dry.exit_code, dry.stderr) == (0, "")
    payload = json.loads(dry.stdout)
    assert payload["result"] is None
    plan = payload["plan"]
    assert (plan["model"], plan["key"], plan["relations"]) == ("Package", [1], ["releases"])
    assert (plan["target"]["transaction_id"], plan["current_transaction_id"]) == (2, 2)
    assert plan["rows"] == [
        {
            "action": "delete",
            "table": "release",
            "model": "Release",
            "key": [1],
            "old": {
                "id": 1,
                "package_id": 1,
                "version": "8.0",
                "requires_python": None,
                "yanked": False,
                "released_at": "2026-01-01T09:00:00",
            },
            "new": None,
            "changes": {
                "id": {"old": 1, "new": None},
                "package_id": {"old": 1, "new": None},
                "version": {"old": "8.0", "new": None},
                "requires_python": {"old": None, "new": None},
                "yanked": {"old": False, "new": None},
                "released_at": {"old": "2026-01-01T09:00:00", "new": None},
            },
        }
    ]

    done = run(*args, "--yes")
    assert (done.exit_code, done.stderr) == (0, "")
    payload = json.loads(done.stdout)
    assert payload["plan"] == plan
    deleted_in = written_in(schema_engine, "release_version", 2)
    assert payload["result"] == {"restored": True, "transaction_id": deleted_in[0]}

    again = json.loads(run(*args, "--yes").stdout)
    assert (again["plan"]["rows"], again["result"]) == ([], None)


def test_restore_off_a_terminal_without_yes_refuses_like_prune(
    run: Callable[..., Result], package_id: int, schema_engine: sa.Engine
) -> None:
    before = dump(schema_engine)
    result = run("restore", "Package", str(package_id), "--to", "2", "--with", "releases")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"error: {RESTORE_NEEDS_YES}\n"
    assert dump(schema_engine) == before


def test_restore_refuses_when_the_record_changed_while_the_prompt_waited(
    run: Callable[..., Result],
    package_id: int,
    schema_engine: sa.Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Someone else edits the package while the plan is on screen: one line, exit 5,
    nothing restored."""

    def edit_then_confirm(*args: object, **kwargs: object) -> bool:
        with Session(schema_engine) as other:
            package = other.get_one(models.Package, package_id)
            package.summary = "Composable command line interface toolkit"
            package.homepage = "https://click.palletsprojects.com"
            other.commit()
        return True

    monkeypatch.setattr(cli_history, "stdin_is_terminal", lambda: True)
    monkeypatch.setattr(click, "confirm", edit_then_confirm)
    result = run("restore", "Package", str(package_id), "--to", "2", "--with", "releases")
    assert result.exit_code == RestoreConflict.exit_code == 5
    assert result.stdout == RELEASE_PLAN.replace("would restore", "restore")
    assert result.stderr == (
        "error: " + CHANGED.format(record=f"Package {package_id}", tx=4) + "\n"
    )
    with Session(schema_engine) as session:
        package = session.get_one(models.Package, package_id)
        assert package.homepage == "https://click.palletsprojects.com"
        assert [r.version for r in package.releases] == ["8.0"]
    assert written_in(schema_engine, "release_version", 2) == []


def test_restore_while_another_session_holds_the_record_exits_5(
    package_id: int, schema_engine: sa.Engine, db_url: str, backend: str
) -> None:
    """With no patience for locks (SQLite busy timeout, PostgreSQL lock_timeout) the
    restore says the record is being changed, and writes nothing."""
    impatient = sa.make_url(db_url).update_query_dict(
        {"timeout": "0"} if backend == "sqlite" else {"options": "-c lock_timeout=1"}
    )
    url = impatient.render_as_string(hide_password=False)
    with Session(schema_engine) as other:
        other.get_one(models.Package, package_id).summary = "uncommitted"
        other.flush()
        result = CliRunner().invoke(
            app,
            ["restore", "Package", str(package_id), "--to", "2", "--with", "releases", "--yes"],
            env={"DATABASE_URL": url},
        )
        other.rollback()
    assert (result.exit_code, result.stdout) == (5, "")
    assert result.stderr.startswith(f"error: Package {package_id} is being changed by another")
    assert len(result.stderr.splitlines()) == 1
    assert written_in(schema_engine, "release_version", 2) == []
