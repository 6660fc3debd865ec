"""``vestige history`` and ``vestige restore`` run in-process on a small fixed history."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from sqlalchemy.orm import Session

import models
from tests.support.backends import BACKEND_PARAMS
from tests.support.history_databases import module_database
from tests.support.project import ROOT
from vestige.cli import app
from vestige.cli import history as cli_history
from vestige.cli.history import AS_OF_AND_DIFF, BAD_LIMIT_WITH, NOTHING_TO_RESTORE
from vestige.cli.parsing import BAD_KEY, BAD_USER, BAD_WHEN
from vestige.history import history
from vestige.history.reading import NO_HISTORY, NOT_THEN, PRUNED_AS_OF
from vestige.history.relations import UNKNOWN_RELATION
from vestige.versioning import actor

EPOCH = datetime(2026, 1, 1, 9, 0)


def build_history(engine: sa.Engine) -> int:
    """tx 1: ann and bob; tx 2: ann adds requests; tx 3: bob edits it; tx 4: ann deletes it."""
    with Session(engine) as session:
        ann = models.Maintainer(username="ann", email="ann@example.org")
        bob = models.Maintainer(username="bob", email="bob@example.org")
        session.add_all([ann, bob])
        session.commit()
        with actor(ann.id):
            package = models.Package(name="requests", summary="HTTP", created_at=EPOCH)
            session.add(package)
            session.commit()
        with actor(bob.id, "198.51.100.7"):
            package.summary = "HTTP for Humans"
            package.homepage = "https://requests.dev"
            session.commit()
        package_id = package.id
        with actor(ann.id):
            session.delete(package)
            session.commit()
        transaction = models.Transaction.__table__
        for tx_id in (1, 2, 3, 4):
            session.execute(
                transaction.update()
                .where(transaction.c.id == tx_id)
                .values(issued_at=EPOCH + timedelta(hours=tx_id))
            )
        session.commit()
    return package_id


def runner(url: str) -> Callable[..., Result]:
    def invoke(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(app, list(args), env={"DATABASE_URL": url}, input=input)

    return invoke


@pytest.fixture(autouse=True)
def _in_project(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


@pytest.fixture(scope="module", params=BACKEND_PARAMS)
def shared(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[sa.Engine, Callable[..., Result]]]:
    """The history built once per backend, for tests that change nothing."""
    with module_database(request, tmp_path_factory) as url:
        engine = sa.create_engine(url)
        assert build_history(engine) == 1
        yield engine, runner(url)
        engine.dispose()


@pytest.fixture
def package_id(schema_engine: sa.Engine) -> int:
    return build_history(schema_engine)


@pytest.fixture
def run(db_url: str) -> Callable[..., Result]:
    return runner(db_url)


def version_rows(engine: sa.Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(models.PackageVersion.__table__).order_by("transaction_id")
        ).all()
        return [tuple(row) for row in rows]


HISTORY = """\
History of Package 1

  transaction   time (UTC)            user   operation   changes
 ─────────────────────────────────────────────────────────────────────────────────────────────────
  2             2026-01-01 11:00:00   ann    insert      id: None -> 1
                                                         name: None -> 'requests'
                                                         summary: None -> 'HTTP'
                                                         created_at: None -> 2026-01-01 09:00:00

  3             2026-01-01 12:00:00   bob    update      summary: 'HTTP' -> 'HTTP for Humans'
                                                         homepage: None -> 'https://requests.dev'

  4             2026-01-01 13:00:00   ann    delete      (record deleted)

"""


def test_history_prints_the_table(shared: tuple[sa.Engine, Callable[..., Result]]) -> None:
    _, run = shared
    package_id = 1
    result = run("history", "Package", str(package_id))
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == HISTORY


def test_history_limit(shared: tuple[sa.Engine, Callable[..., Result]]) -> None:
    _, run = shared
    package_id = 1
    result = run("history", "Package", str(package_id), "--limit", "1")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[4].split() == [
        "4",
        "2026-01-01",
        "13:00:00",
        "ann",
        "delete",
        "(record",
        "deleted)",
    ]
    assert "insert" not in result.stdout


def test_history_json(shared: tuple[sa.Engine, Callable[..., Result]]) -> None:
    _, run = shared
    package_id = 1
    result = run("history", "package", str(package_id), "--json")
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert (document["model"], document["key"]) == ("Package", [package_id])
    versions = document["versions"]
    assert [(v["transaction_id"], v["user"], v["operation"]) for v in versions] == [
        (2, "ann", "insert"),
        (3, "bob", "update"),
        (4, "ann", "delete"),
    ]
    assert versions[1]["issued_at"] == "2026-01-01T12:00:00"
    assert versions[1]["remote_addr"] == "198.51.100.7"
    assert versions[1]["changes"] == {
        "summary": {"old": "HTTP", "new": "HTTP for Humans"},
        "homepage": {"old": None, "new": "https://requests.dev"},
    }
    assert versions[1]["values"]["created_at"] == "2026-01-01T09:00:00"


AS_OF = """\
Package 1 as of transaction 3 (2026-01-01 12:00:00, bob)

  field        value
 ─────────────────────────────────────
  id           1
  name         'requests'
  summary      'HTTP for Humans'
  homepage     'https://requests.dev'
  license_id   None
  created_at   2026-01-01 09:00:00

"""


def test_as_of_by_transaction_and_by_time(shared: tuple[sa.Engine, Callable[..., Result]]) -> None:
    _, run = shared
    package_id = 1
    by_tx = run("history", "Package", str(package_id), "--as-of", "3")
    by_time = run("history", "Package", str(package_id), "--as-of", "2026-01-01T12:30:00")
    aware = run("history", "Package", str(package_id), "--as-of", "2026-01-01T13:30:00+01:00")
    assert (by_tx.exit_code, by_tx.stdout) == (0, AS_OF)
    assert (by_time.exit_code, by_time.stdout) == (0, AS_OF)
    assert (aware.exit_code, aware.stdout) == (0, AS_OF)


DIFF = """\
Package 1: transaction 2 -> 3

  field      at 2     at 3
 ────────────────────────────────────────────
  summary    'HTTP'   'HTTP for Humans'
  homepage   None     'https://requests.dev'

"""


def test_diff_between_two_transactions(shared: tuple[sa.Engine, Callable[..., Result]]) -> None:
    _, run = shared
    package_id = 1
    result = run("history", "Package", str(package_id), "--diff", "2", "3")
    assert (result.exit_code, result.stdout) == (0, DIFF)
    as_json = run("history", "Package", str(package_id), "--diff", "2", "3", "--json")
    assert json.loads(as_json.stdout)["changes"]["summary"] == {
        "old": "HTTP",
        "new": "HTTP for Humans",
    }


NOT_AT_1 = NOT_THEN.format(record="Package 1", when="transaction 1", args="Package 1")
BAD_INPUT = [
    (
        ("history", "Pkg", "1"),
        "error: unknown model 'Pkg'; versioned models are: License, Maintainer, Package, Release",
    ),
    (("history", "Package", "99"), "error: " + NO_HISTORY.format(record="Package 99")),
    (
        ("history", "Package", "one"),
        "error: " + BAD_KEY.format(text="one", model="Package", expected="id (int)"),
    ),
    (
        ("history", "Package", "1", "--as-of", "2026-01-01T10:00:00"),
        "error: "
        + NOT_THEN.format(record="Package 1", when="2026-01-01 10:00:00", args="Package 1"),
    ),
    (
        ("history", "Package", "1", "--as-of", "4"),
        "error: " + NOT_THEN.format(record="Package 1", when="transaction 4", args="Package 1"),
    ),
    (
        ("history", "Package", "1", "--as-of", "yesterday"),
        "error: " + BAD_WHEN.format(text="yesterday"),
    ),
    (("history", "Package", "1", "--as-of", "2", "--diff", "2", "3"), "error: " + AS_OF_AND_DIFF),
    (("history", "Package", "1", "--limit", "0"), None),
    (("history", "Package", "1", "--as-of", "3", "--limit", "2"), "error: " + BAD_LIMIT_WITH),
    (
        ("restore", "Package", "1", "--to", "3", "--user", "ann"),
        "error: " + BAD_USER.format(text="ann"),
    ),
    (("restore", "Package", "1", "--to", "1", "--yes"), "error: " + NOT_AT_1),
    (
        ("restore", "Package", "1", "--to", "3", "--with", "authors", "--yes"),
        "error: "
        + UNKNOWN_RELATION.format(
            model="Package", name="authors", known="license, maintainers, releases"
        ),
    ),
]


def test_bad_input_is_one_line_exit_2_and_changes_nothing(
    shared: tuple[sa.Engine, Callable[..., Result]],
) -> None:
    engine, run = shared
    before = version_rows(engine)
    for args, message in BAD_INPUT:
        result = run(*args)
        assert (result.exit_code, result.stdout) == (2, ""), args
        if message is None:  # click's own usage error
            assert "Invalid value for '--limit'" in result.stderr
        else:
            assert result.stderr == message + "\n", args
    assert version_rows(engine) == before


def test_restore_dry_run_then_restore(
    run: Callable[..., Result],
    package_id: int,
    schema_engine: sa.Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = version_rows(schema_engine)
    plan = (
        "would restore Package 1 to its version of transaction 3 (2026-01-01 12:00:00, bob)\n"
        "  insert Package 1\n"
        "    id: 1\n"
        "    name: 'requests'\n"
        "    summary: 'HTTP for Humans'\n"
        "    homepage: 'https://requests.dev'\n"
        "    license_id: None\n"
        "    created_at: 2026-01-01 09:00:00\n"
    )
    dry = run("restore", "Package", str(package_id), "--to", "3", "--dry-run")
    assert (dry.exit_code, dry.stdout) == (0, plan)
    monkeypatch.setattr(cli_history, "stdin_is_terminal", lambda: True)
    declined = run("restore", "Package", str(package_id), "--to", "3", input="n\n")
    assert declined.exit_code == 4
    assert declined.stdout.startswith(plan.replace("would restore", "restore"))
    assert "Restore? [y/N]: n" in declined.stdout
    assert version_rows(schema_engine) == before

    done = run("restore", "Package", str(package_id), "--to", "3", "--user", "2", "--yes")
    assert done.exit_code == 0
    assert done.stdout.splitlines()[-1] == (
        "restored Package 1 to its version of transaction 3, in transaction 5"
    )
    with Session(schema_engine) as session:
        package = session.get_one(models.Package, package_id)
        assert (package.summary, package.homepage) == ("HTTP for Humans", "https://requests.dev")
        assert history(session, models.Package, package_id)[-1].user == "bob"
    again = run("restore", "Package", str(package_id), "--to", "3", "--yes")
    assert (again.exit_code, again.stdout) == (
        0,
        NOTHING_TO_RESTORE.format(record="Package 1", when="transaction 3") + "\n",
    )


def test_restore_refused_after_pruning_exits_1(
    run, package_id: int, schema_engine: sa.Engine
) -> None:
    with schema_engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM package_version WHERE transaction_id < 3"))
    before = version_rows(schema_engine)
    result = run("restore", "Package", str(package_id), "--to", "2", "--yes")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: " + PRUNED_AS_OF.format(record="Package 1", first=3, when="transaction 2") + "\n"
    )
    assert version_rows(schema_engine) == before
    shown = run("history", "Package", str(package_id))
    assert "(earlier history pruned)" in shown.stdout
