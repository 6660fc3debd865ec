"""The workshop, played as a learner would, in scratch clones of this working tree.

``setup`` builds the branches with plumbing only; every exercise's check gives its
hint at the start and passes once the solution is applied, on SQLite (the exercise's
own file) and on PostgreSQL (``DATABASE_URL``).
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from tests.conftest import BACKENDS, ROOT
from tests.support.workshop_walkthrough import (
    SCRIPT,
    Check,
    Command,
    Played,
    learner_environment,
    play,
    snapshot,
)
from workshop import messages
from workshop.branches import AUTHOR_EMAIL, EXERCISES, setup
from workshop.checks import check, workshop_url
from workshop.cli import main

BRANCHES = [name for ex in EXERCISES for name in (ex.branch, ex.solution_branch)]


def git(repo: Path, *args: str) -> str:
    env = learner_environment()
    return subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository whose main holds this working tree, made once per module."""
    return snapshot(ROOT, tmp_path_factory.mktemp("workshop") / "template")


@pytest.fixture
def clone(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A learner's clone of the template, as the working directory."""
    path = tmp_path / "vestige"
    subprocess.run(["git", "clone", "-q", str(template), str(path)], check=True)
    monkeypatch.chdir(path)
    yield path


def heads(repo: Path) -> dict[str, str]:
    listing = git(repo, "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads")
    return dict(line.split() for line in listing.splitlines())


def invoke(*args: str, env: dict[str, str | None] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env)
    return result.exit_code, result.output


# --- setup -------------------------------------------------------------------------


def test_setup_builds_every_branch_on_main_without_touching_the_checkout(clone: Path) -> None:
    main_before = git(clone, "rev-parse", "main")
    remotes_before = git(clone, "for-each-ref", "refs/remotes")

    code, output = invoke("setup")

    assert code == 0, output
    assert output.strip().endswith(messages.SETUP_DONE)
    assert set(heads(clone)) == {"main", *BRANCHES}
    assert git(clone, "rev-parse", "main") == main_before
    assert git(clone, "symbolic-ref", "--short", "HEAD") == "main"
    assert git(clone, "status", "--porcelain") == ""
    assert git(clone, "for-each-ref", "refs/remotes") == remotes_before
    for exercise in EXERCISES:
        start, solution = exercise.branch, exercise.solution_branch
        assert git(clone, "rev-parse", f"{start}^") == main_before
        assert git(clone, "rev-parse", f"{solution}^") == git(clone, "rev-parse", start)
        # the branch adds exercise/ to main and nothing else
        changed = git(clone, "diff", "--name-only", "main", start).splitlines()
        assert changed and all(path.startswith("exercise/") for path in changed)
        readme = git(clone, "show", f"{start}:exercise/README.md")
        assert readme.startswith(f"# Exercise {exercise.number}:")
        assert git(clone, "show", "-s", "--format=%ae", solution) == AUTHOR_EMAIL
    # exercise N starts from exercise N-1 solved (its README aside)
    assert git(clone, "diff", "--name-only", "solution-1", "exercise-2", "--", "exercise/") == (
        "exercise/README.md\nexercise/crud.py\nexercise/history.py"
    )


def test_setup_twice_and_in_another_clone_gives_the_same_commits(
    clone: Path, template: Path, tmp_path: Path
) -> None:
    setup(clone)
    first = heads(clone)
    git(clone, "checkout", "-q", "exercise-2")

    results = setup(clone)

    assert heads(clone) == first
    assert {result.state for result in results} == {"unchanged"}
    other = tmp_path / "other"
    subprocess.run(["git", "clone", "-q", str(template), str(other)], check=True)
    setup(other)
    assert heads(other) == first


def test_setup_refuses_on_a_dirty_tree(clone: Path) -> None:
    (clone / "notes.txt").write_text("mine\n")

    code, output = invoke("setup")

    assert code == 1
    assert output.strip() == f"error: {messages.DIRTY_TREE}"
    assert set(heads(clone)) == {"main"}


def test_setup_keeps_a_learners_commits(clone: Path) -> None:
    setup(clone)
    git(clone, "checkout", "-q", "exercise-1")
    (clone / "exercise" / "notes.txt").write_text("mine\n")
    git(clone, "add", "-A")
    git(clone, "commit", "-q", "-m", "my exercise 1")
    mine = git(clone, "rev-parse", "exercise-1")
    git(clone, "checkout", "-q", "main")
    # main moves on: setup would rebuild every branch on it
    git(clone, "commit", "-q", "--allow-empty", "-m", "main moves on")

    code, output = invoke("setup")

    assert code == 1
    assert output.strip() == "error: " + messages.BRANCH_HAS_YOUR_COMMITS.format(
        branch="exercise-1"
    )
    assert git(clone, "rev-parse", "exercise-1") == mine


def test_setup_outside_a_repository_and_without_main(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, output = invoke("setup")
    assert code == 2
    assert output.strip() == "error: " + messages.NOT_A_REPOSITORY.format(path=tmp_path)
    git(tmp_path, "init", "-q", "-b", "trunk")
    git(tmp_path, "commit", "-q", "--allow-empty", "-m", "empty")
    code, output = invoke("setup")
    assert code == 2
    assert output.strip() == "error: " + messages.NO_BASE.format(base="main")


# --- check: input and output ------------------------------------------------------------


def test_check_rejects_an_unknown_exercise(clone: Path) -> None:
    code, output = invoke("check", "9")
    assert code == 2
    assert output.strip() == "error: " + messages.NO_SUCH_EXERCISE.format(number=9, first=1, last=4)
    code, output = invoke("check", "one")
    assert code == 2
    assert "'one' is not a valid integer" in output


def test_check_on_main_says_to_check_the_exercise_out(clone: Path) -> None:
    code, output = invoke("check", "2", env={"DATABASE_URL": None})

    assert code == 1
    lines = output.splitlines()
    assert lines[0] == messages.CHECK_TITLE.format(number=2, title=EXERCISES[1].title)
    assert lines[1] == messages.STEP_TODO.format(
        index=1,
        step="exercise/ holds this exercise",
        hint=messages.NO_WORKSPACE.format(number=2),
    )
    assert lines[2].startswith("Not done yet (0 of 7 steps)")
    assert not (clone / "exercise" / "vestige.db").exists()


def test_check_names_itself_as_typed_from_where_it_runs(
    clone: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup(clone)
    git(clone, "checkout", "-q", "exercise-1")
    env: dict[str, str | None] = {"DATABASE_URL": None}

    for where, command in (
        (clone / "exercise", "../scripts/workshop"),
        (clone, "./scripts/workshop"),
    ):
        monkeypatch.chdir(where)
        code, output = invoke("check", "1", env=env)
        assert code == 1
        assert output.splitlines()[-1] == messages.CHECK_NOT_DONE.format(
            passed=2, total=5, command=command, number=1
        )


def test_check_with_a_bad_or_unreachable_database_url(clone: Path) -> None:
    setup(clone)
    git(clone, "checkout", "-q", "exercise-1")

    code, output = invoke("check", "1", env={"DATABASE_URL": "not a url"})
    assert code == 2
    assert output.strip() == f"error: {messages.BAD_URL}"
    # a URL, but no driver the workshop can use: unknown, or async (the scripts are not)
    for url, driver in (
        ("nosuch://learner@localhost/workshop", "nosuch"),
        ("postgresql+asyncpg://learner:s3cret@127.0.0.1:1/workshop", "postgresql+asyncpg"),
    ):
        code, output = invoke("check", "1", env={"DATABASE_URL": url})
        assert code == 2, output
        assert output.strip() == "error: " + messages.BAD_DRIVER.format(driver=driver)

    unreachable = "postgresql+psycopg2://learner:s3cret@127.0.0.1:1/workshop"
    code, output = invoke("check", "1", env={"DATABASE_URL": unreachable})
    assert code == 1
    todo = output.splitlines()[2]
    assert todo.startswith(
        "  todo  2. the database answers: cannot reach the database at "
        "postgresql+psycopg2://learner:***@127.0.0.1:1/workshop: "
    )
    assert todo.endswith("check DATABASE_URL (for PostgreSQL: docker compose up -d db)")
    assert "s3cret" not in output


def test_every_command_has_help_with_an_example() -> None:
    for name in main.commands:
        code, output = invoke(name, "--help")
        assert code == 0, name
        assert "Example:" in output, name


# --- every exercise, from its start to its solution -------------------------------------


def learner_env(backend: str, db_url: str) -> dict[str, str]:
    """SQLite: the exercise's own file (no DATABASE_URL); PostgreSQL: the test database."""
    env = learner_environment()
    env.pop("DATABASE_URL", None)
    if backend == "postgresql":
        env["DATABASE_URL"] = db_url
    return env


def played_checks(played: list[Played]) -> list[tuple[str | None, str | None]]:
    """(expected hint, hint given) for every check played; the first must not be done.

    Every step must have gone as the script says: each check gave its hint, and each
    wrong turn's command printed the line it must print.
    """
    wrong = [(str(step.step), step.hint) for step in played if not step.as_expected]
    assert wrong == []
    said = [(step.step.expected, step.hint) for step in played if isinstance(step.step, Check)]
    assert said[0][1] is not None
    return said


def wrong_turns(number: int) -> list[str]:
    """The lines exercise ``number``'s wrong turns must print, as the script says them."""
    return [
        step.expected
        for step in SCRIPT[number]
        if isinstance(step, Command) and step.expected is not None
    ]


def test_the_walkthrough_command_runs_every_exercise_on_both_backends() -> None:
    """``./scripts/workshop walkthrough`` (documented for instructors) runs the tests below."""
    listed = subprocess.run(
        [str(ROOT / "scripts" / "workshop"), "walkthrough", "--collect-only", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert listed.returncode == 0, listed.stdout + listed.stderr
    collected = {line.split("::")[1] for line in listed.stdout.splitlines() if "::" in line}
    assert collected == {
        *(f"test_exercise_from_start_to_solution[{b}-{n}]" for b in BACKENDS for n in (1, 2, 3)),
        *(f"test_exercise_4_prunes_and_its_check_catches_broken_history[{b}]" for b in BACKENDS),
    }


@pytest.mark.parametrize("number", [1, 2, 3])
def test_exercise_from_start_to_solution(
    number: int, backend: str, db_url: str, clone: Path
) -> None:
    setup(clone)
    env = learner_env(backend, db_url)

    played = list(play(clone, number, env))
    said = played_checks(played)

    assert said[-1][1] is None
    # every wrong turn was played, and printed its hint
    printed = [step.hint for step in played if isinstance(step.step, Command)]
    assert all(line in printed for line in wrong_turns(number) if "{" not in line)
    code, output = invoke("check", str(number), env={"DATABASE_URL": env.get("DATABASE_URL")})
    assert code == 0, output
    assert messages.CHECK_DONE.format(number=number) in output
    if backend == "sqlite":
        assert (clone / "exercise" / "vestige.db").is_file()
    if number == 3:
        # the script generated its own revisions; solution-3 brings the shipped ones
        git(clone, "checkout", "-q", "solution-3")
        for argv in (["python", "db.py", "reset"], ["alembic", "upgrade", "head"]):
            subprocess.run(argv, cwd=clone / "exercise", env=env, check=True, capture_output=True)
        assert check(3, clone, env).done
        # autogenerate says what it compares, without a "setting up autogenerate plugin" line
        # per plugin
        compared = subprocess.run(
            ["alembic", "check"], cwd=clone / "exercise", env=env, capture_output=True, text=True
        )
        assert compared.returncode == 0, compared.stderr
        assert "No new upgrade operations detected." in compared.stdout
        assert "autogenerate plugin" not in compared.stderr


def test_exercise_4_prunes_and_its_check_catches_broken_history(
    backend: str, db_url: str, clone: Path
) -> None:
    setup(clone)
    env = learner_env(backend, db_url)
    git(clone, "checkout", "-q", "exercise-4")
    engine = sa.create_engine(workshop_url(clone / "exercise", env))
    # The database as exercise 3 leaves it, in the one respect exercise 4 trips on when
    # python db.py reset is skipped: at a revision only the learner's exercise 3 holds.
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32))"))
        connection.execute(sa.text("INSERT INTO alembic_version VALUES ('0123456789ab')"))
    played = list(play(clone, 4, env))
    said = played_checks(played)
    assert said[0][1] == messages.STALE_REVISION.format(
        revision="0123456789ab", then=messages.STALE_THEN[4]
    )
    assert len(played) == len(SCRIPT[4])

    # what prune left behind (its lock file next to vestige.db) is ignored: a learner's
    # git add -A && git commit does not pick it up
    assert git(clone, "status", "--porcelain") == ""
    versions = sa.table(
        "package_version", sa.column("id"), sa.column("transaction_id"), sa.column("name")
    )

    def delete(*where: sa.ColumnElement[bool]) -> None:
        with engine.begin() as connection:
            connection.execute(sa.delete(versions).where(*where))

    def hint() -> str | None:
        report = check(4, clone, env)
        return report.missing.hint if report.missing else None

    try:
        with engine.connect() as connection:
            rounds = connection.scalars(
                sa.select(sa.column("id")).select_from(sa.table("transaction")).order_by("id")
            ).all()
        assert hint() is None
        with engine.connect() as connection:
            kept = connection.execute(
                sa.select(versions.c.name, versions.c.transaction_id, versions.c.id).order_by(
                    versions.c.name, versions.c.transaction_id
                )
            ).all()
        names = sorted({name for name, _, _ in kept})
        assert names == ["attrs", "click", "flask", "requests", "rich"]  # leftpad is gone
        requests = [row for row in kept if row.name == "requests"]
        assert [row.transaction_id for row in requests] == rounds[-4:]
        key = requests[0].id

        delete(versions.c.id == key, versions.c.transaction_id == rounds[-3])
        assert hint() == messages.CHAIN_BROKEN.format(
            table="package", key=key, end=rounds[-3], next=rounds[-2]
        )
        delete(versions.c.id == key, versions.c.transaction_id == rounds[-4])
        assert hint() == messages.TOO_FEW_KEPT.format(table="package", key=key, count=2, keep=3)
        attrs = next(row.id for row in kept if row.name == "attrs")
        delete(versions.c.id == attrs, versions.c.transaction_id == rounds[-1])
        assert hint() == messages.CURRENT_VERSION_LOST.format(table="package", key=attrs, count=0)
    finally:
        engine.dispose()
    # back on main, exercise/ holds the database: setup must not take it for uncommitted work
    git(clone, "checkout", "-q", "main")
    assert git(clone, "status", "--porcelain") == ""
    code, output = invoke("setup")
    assert code == 0, output


# --- the kit's db.py: the errors a learner's script meets, as one line ---------------------


def load_kit_db(monkeypatch: pytest.MonkeyPatch, db_url: str, folder: Path) -> ModuleType:
    """``exercise/db.py`` as a script imports it, from a copy in ``folder``, on ``db_url``."""
    shutil.copy(ROOT / "workshop" / "exercise-1" / "start" / "db.py", folder / "db.py")
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # db.py replaces it
    spec = importlib.util.spec_from_file_location("learner_db", folder / "db.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_kit_turns_the_usual_errors_into_one_line_with_the_fix(
    monkeypatch: pytest.MonkeyPatch, db_url: str, tmp_path: Path
) -> None:
    db = load_kit_db(monkeypatch, db_url, tmp_path)
    assert sys.excepthook is db._explain
    table = sa.Table("package", sa.MetaData(), sa.Column("name", sa.String(10), unique=True))

    def error(statement: sa.Executable) -> sa.exc.DBAPIError:
        with pytest.raises(sa.exc.DBAPIError) as caught, db.engine.begin() as connection:
            connection.execute(statement)
        return caught.value

    try:
        transaction = sa.table("transaction", sa.column("id"))
        assert db.hint(error(sa.select(transaction.c.id))) == db.NO_VERSION_TABLES.format(
            table="transaction", rebuild=db.REBUILD_SCHEMA
        )
        assert db.hint(error(sa.select(table.c.name))) == db.NO_TABLE.format(
            table="package", create=db.CREATE_SCHEMA
        )
        table.create(db.engine)
        with db.engine.begin() as connection:
            connection.execute(table.insert().values(name="flask"))
        assert db.hint(error(table.insert().values(name="flask"))) == db.DUPLICATE_ROWS
        # in exercises 3 and 4 the schema comes from Alembic
        (tmp_path / "alembic.ini").write_text("")
        assert db.hint(error(sa.select(transaction.c.id))) == db.NO_VERSION_TABLES.format(
            table="transaction", rebuild=db.REBUILD_MIGRATED
        )
        assert db.hint(ValueError("anything else")) is None
    finally:
        db.engine.dispose()


def test_kit_says_when_the_database_is_out_of_reach(
    monkeypatch: pytest.MonkeyPatch, backend: str, tmp_path: Path
) -> None:
    unreachable = {
        "sqlite": f"sqlite:///{tmp_path / 'no such folder' / 'vestige.db'}",
        "postgresql": "postgresql+psycopg2://learner:s3cret@127.0.0.1:1/workshop",
    }[backend]
    db = load_kit_db(monkeypatch, unreachable, tmp_path)
    with pytest.raises(sa.exc.DBAPIError) as caught:
        db.reset()
    line = db.hint(caught.value)
    shown = sa.make_url(unreachable).render_as_string(hide_password=True)
    assert line is not None and line.startswith(f"cannot reach the database at {shown}: ")
    assert line.endswith("check DATABASE_URL (for PostgreSQL: docker compose up -d db)")
    assert "s3cret" not in line
