"""Bad input at the command line's edge: one line, a documented exit code, data untouched.

Every case runs in-process (CliRunner) on SQLite and PostgreSQL, on the sample data.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from sqlalchemy.orm import Session

from models.sample_data import write_sample_data
from tests.support.project import ROOT
from tests.support.retention_data import (
    history_engine,
    history_url,
    postgres_history_url,
    snapshot,
    sqlite_history_template,
)
from vestige.cli import app
from vestige.cli import history as cli_history
from vestige.cli import prune as cli_prune
from vestige.cli.parsing import BAD_KEY, BAD_TX, BAD_USER, INT_RANGE, OUT_OF_RANGE_WHEN
from vestige.cli.support import DECLINED, INTERRUPTED, NOT_MIGRATED
from vestige.errors import COMMAND_EXIT_CODES, ExitCode
from vestige.retention.policy import MAX_DAYS, NOT_UTF8, TOO_LARGE, WHY

# fixtures, imported to be found
__all__ = ["history_engine", "history_url", "postgres_history_url", "sqlite_history_template"]

INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1


@pytest.fixture(autouse=True)
def _in_project(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


@pytest.fixture
def sample(history_engine: sa.Engine) -> sa.Engine:
    """The demo's sample data: package 1 written in transactions 2 to 5."""
    with Session(history_engine) as session:
        assert write_sample_data(session) == 1
    return history_engine


def vestige(url: str, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env={"DATABASE_URL": url}, input=input)


def assert_one_line(result: Result, code: int, *, command: str) -> str:
    """The run failed with ``code`` (documented for ``command``) and one line on stderr."""
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    assert code in COMMAND_EXIT_CODES[command]
    assert result.stderr.startswith("error: ")
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.output
    return result.stderr[len("error: ") : -1]


def package_key(text: str, low: int, high: int) -> str:
    return BAD_KEY.format(
        text=text, model="Package", expected=INT_RANGE.format(name="id", low=low, high=high)
    )


BIG = str(2**63)
OUT_OF_RANGE = [
    (("history", "Package", BIG), package_key(BIG, -(2**31), INT32_MAX)),
    (("history", "Package", "--", str(-(2**63) - 1)), None),
    (("history", "Package", str(2**31)), package_key(str(2**31), -(2**31), INT32_MAX)),
    (("history", "Package", "1", "--as-of", BIG), BAD_TX.format(text=BIG, limit=INT64_MAX)),
    (("history", "Package", "1", "--as-of", "0"), BAD_TX.format(text="0", limit=INT64_MAX)),
    (("history", "Package", "1", "--diff", "2", BIG), BAD_TX.format(text=BIG, limit=INT64_MAX)),
    (("restore", "Package", "1", "--to", BIG, "--dry-run"), None),
    (("restore", "Package", "1", "--to", "3", "--user", BIG, "--yes"), BAD_USER.format(text=BIG)),
    (
        ("restore", "Package", "1", "--to", "3", "--user", str(2**31), "--yes"),
        BAD_USER.format(text=str(2**31)),
    ),
    (("prune", "--batch-size", BIG, "--yes"), None),
    (
        ("history", "Package", "1", "--as-of", "0001-01-01T00:00:00+05:00"),
        OUT_OF_RANGE_WHEN.format(text="0001-01-01T00:00:00+05:00"),
    ),
    (
        ("history", "Package", "1", "--as-of", "9999-12-31T23:59:59-05:00"),
        OUT_OF_RANGE_WHEN.format(text="9999-12-31T23:59:59-05:00"),
    ),
    # found by the fuzz test: a naive time was converted as local time, and failed
    (("restore", "Package", "1", "--to", "0001-01-01", "--yes"), None),
    (("history", "Package", "1", "--as-of", "0001-01-01T00:00:00"), None),
    (
        ("restore", "Package", "1", "--to", "9999-12-31T23:59:59-05:00", "--yes"),
        OUT_OF_RANGE_WHEN.format(text="9999-12-31T23:59:59-05:00"),
    ),
]


@pytest.mark.parametrize(
    ("args", "message"), OUT_OF_RANGE, ids=[" ".join(args)[:60] for args, _ in OUT_OF_RANGE]
)
def test_out_of_range_numbers_and_times_are_refused_with_one_line(
    sample: sa.Engine, history_url: str, args: tuple[str, ...], message: str | None
) -> None:
    before = snapshot(sample)
    result = vestige(history_url, *args)
    line = assert_one_line(result, ExitCode.BAD_INPUT, command=args[0])
    if message is not None:
        assert line == message
    assert result.stdout == ""
    assert snapshot(sample) == before


def test_a_limit_beyond_64_bits_means_every_version(sample: sa.Engine, history_url: str) -> None:
    every = vestige(history_url, "history", "Package", "1", "--json")
    huge = vestige(history_url, "history", "Package", "1", "--json", "--limit", str(2**70))
    assert (every.exit_code, huge.exit_code) == (0, 0), huge.output
    versions = json.loads(huge.stdout)["versions"]
    assert len(versions) == 4
    assert versions == json.loads(every.stdout)["versions"]


def test_the_batch_size_limit_is_in_the_message(sample: sa.Engine, history_url: str) -> None:
    result = vestige(history_url, "prune", "--batch-size", BIG, "--dry-run")
    line = assert_one_line(result, ExitCode.BAD_INPUT, command="prune")
    assert line == cli_prune.BAD_BATCH_SIZE.format(limit=cli_prune.MAX_BATCH_SIZE, value=BIG)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            b"keep_days = 1000000\n",
            TOO_LARGE.format(
                where="{path}", key="keep_days", limit=MAX_DAYS, why=WHY["keep_days"], value=1000000
            ),
        ),
        (b"keep_days = 30\n[models.Package]\ndeleted_keep_days = 99999999999999999999\n", None),
        (b"keep_versions = 9223372036854775807\n", None),
        (
            b"\xff\xfe\x00k\x00e\x00e\x00p",
            NOT_UTF8.format(path="{path}", reason="invalid start byte", at=0),
        ),
        (bytes(range(256)) * 4, None),
    ],
    ids=["keep_days 1e6", "deleted_keep_days 1e20", "keep_versions 2**63-1", "utf-16", "binary"],
)
@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "yes"])
def test_policies_with_huge_values_or_binary_files_are_refused(
    sample: sa.Engine,
    history_url: str,
    tmp_path: Path,
    content: bytes,
    message: str | None,
    dry_run: bool,
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_bytes(content)
    before = snapshot(sample)
    result = vestige(
        history_url, "prune", "--policy", str(policy), "--dry-run" if dry_run else "--yes"
    )
    line = assert_one_line(result, ExitCode.BAD_INPUT, command="prune")
    if message is not None:
        assert line == message.format(path=policy)
    assert snapshot(sample) == before


def test_a_policy_file_that_never_ends_is_refused(history_url: str) -> None:
    result = vestige(history_url, "prune", "--policy", "/dev/zero", "--dry-run")
    assert "larger than" in assert_one_line(result, ExitCode.BAD_INPUT, command="prune")


def not_migrated(url: str) -> str:
    return NOT_MIGRATED.split("(")[0].format(url=sa.make_url(url).render_as_string())


@pytest.mark.parametrize(
    "args",
    [
        ("history", "Package", "1"),
        ("history", "Package", "1", "--as-of", "3"),
        ("restore", "Package", "1", "--to", "3", "--dry-run"),
        ("restore", "Package", "1", "--to", "3", "--yes"),
        ("prune", "--dry-run"),
    ],
    ids=lambda v: " ".join(v),
)
def test_an_empty_database_says_to_migrate_it(
    backend: str, db_url: str, tmp_path: Path, args: tuple[str, ...]
) -> None:
    if backend == "sqlite":
        Path(sa.make_url(db_url).database or "").touch()  # exists, holds nothing
    result = vestige(db_url, *args)
    line = assert_one_line(result, ExitCode.FAILED, command=args[0])
    assert line.startswith(not_migrated(db_url)), line
    assert "alembic upgrade head" in line


@pytest.mark.parametrize(
    "args",
    [
        ("history", "Package", "1"),
        ("history", "Package", "1", "--diff", "2", "3", "--json"),
        ("restore", "Package", "1", "--to", "3", "--dry-run"),
    ],
    ids=lambda v: " ".join(v),
)
def test_a_database_older_than_the_models_says_to_migrate_it(
    schema_engine: sa.Engine, db_url: str, args: tuple[str, ...]
) -> None:
    with Session(schema_engine) as session:
        write_sample_data(session)
    # what an older revision lacks: a column the models have since gained
    with schema_engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE package_version DROP COLUMN homepage"))
    result = vestige(db_url, *args)
    line = assert_one_line(result, ExitCode.FAILED, command=args[0])
    assert line.startswith(not_migrated(db_url)), line
    assert "homepage" in line


@contextmanager
def read_only(directory: Path) -> Iterator[None]:
    """``directory`` made read-only, for root too (``chattr +i``), else the test skips."""
    directory.chmod(stat.S_IRUSR | stat.S_IXUSR)
    immutable = False
    if os.access(directory, os.W_OK):
        immutable = (
            subprocess.run(["chattr", "+i", str(directory)], capture_output=True).returncode == 0
        )
    probe = directory / "probe"
    try:
        try:
            probe.touch()
        except OSError:
            pass
        else:
            probe.unlink()
            pytest.skip("cannot make a directory read-only here (root without chattr)")
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(directory)], check=True)
        directory.chmod(stat.S_IRWXU)


@pytest.mark.sqlite
@pytest.mark.parametrize("mode", ["--dry-run", "--yes"])
def test_prune_in_a_read_only_directory_is_one_line_or_a_dry_run(
    tmp_path: Path, sqlite_history_template: Path, mode: str
) -> None:
    """A dry run only reads (and takes no lock): it works; a real run says why it cannot."""
    directory = tmp_path / "ro"
    directory.mkdir()
    database = directory / "app.db"
    database.write_bytes(sqlite_history_template.read_bytes())
    url = f"sqlite:///{database}"
    engine = sa.create_engine(url)
    with Session(engine) as session:
        write_sample_data(session)
    before = snapshot(engine)
    engine.dispose()
    with read_only(directory):
        result = vestige(url, "prune", mode)
        listing = sorted(path.name for path in directory.iterdir())
    if mode == "--dry-run":
        assert (result.exit_code, result.stderr) == (0, ""), result.output
        assert "Dry run: would delete" in result.stdout
    else:
        line = assert_one_line(result, ExitCode.FAILED, command="prune")
        assert str(directory) in line
    assert listing == ["app.db"]
    engine = sa.create_engine(url)
    assert snapshot(engine) == before
    engine.dispose()


@pytest.mark.sqlite
@pytest.mark.parametrize("mode", ["--dry-run", "--yes"])
def test_prune_when_the_database_directory_is_missing_is_one_line(
    tmp_path: Path, mode: str
) -> None:
    missing = tmp_path / "no_such_directory"
    result = vestige(f"sqlite:///{missing / 'app.db'}", "prune", mode)
    # 1 (cannot open or lock it) or 2 (no database at that path): both documented
    assert result.exit_code in (ExitCode.FAILED, ExitCode.BAD_INPUT)
    line = assert_one_line(result, result.exit_code, command="prune")
    assert str(missing) in line
    assert not missing.exists()


JSON_ERRORS = [
    ("history", "Package", "nope", "--json"),
    ("history", "Package", "1", "--json", "--limit", "0"),
    ("history", "Package", "1", "--json", "--as-of", "9999-12-31T23:59:59-05:00"),
    ("history", "Nope", "1", "--json"),
    ("check", "--json", "--models", "no_such_module"),
    ("restore", "Package", "1", "--to", str(2**63), "--json", "--yes"),
    ("prune", "--json", "--dry-run", "--batch-size", "0"),
    ("prune", "--json", "--yes", "--policy", "/no/such/policy.toml"),
]


@pytest.mark.parametrize("args", JSON_ERRORS, ids=lambda v: " ".join(v))
def test_under_json_an_error_is_one_object_on_stdout_and_one_line_on_stderr(
    sample: sa.Engine, history_url: str, args: tuple[str, ...]
) -> None:
    result = vestige(history_url, *args)
    line = assert_one_line(result, result.exit_code, command=args[0])
    assert json.loads(result.stdout) == {"error": line, "exit_code": result.exit_code}
    assert result.stdout.count("\n") == 1


def test_under_json_a_database_error_is_one_object(backend: str, db_url: str) -> None:
    if backend == "sqlite":
        Path(sa.make_url(db_url).database or "").touch()
    result = vestige(db_url, "history", "Package", "1", "--json")
    line = assert_one_line(result, ExitCode.FAILED, command="history")
    assert json.loads(result.stdout) == {"error": line, "exit_code": 1}


def test_without_json_stdout_stays_empty_on_error(sample: sa.Engine, history_url: str) -> None:
    result = vestige(history_url, "history", "Package", "nope")
    assert_one_line(result, ExitCode.BAD_INPUT, command="history")
    assert result.stdout == ""


def test_a_json_flag_given_as_an_option_value_is_not_json(
    sample: sa.Engine, history_url: str
) -> None:
    result = vestige(history_url, "check", "--models", "--json")
    assert_one_line(result, ExitCode.BAD_INPUT, command="check")
    assert result.stdout == ""


def test_a_usage_error_is_one_line_naming_the_help(sample: sa.Engine, history_url: str) -> None:
    result = vestige(history_url, "history", "Package", "1", "--limit", "0")
    line = assert_one_line(result, ExitCode.BAD_INPUT, command="history")
    assert "Invalid value for '--limit'" in line
    assert line.endswith("(see 'vestige history --help')")
    missing = vestige(history_url, "restore", "Package", "1")
    assert "Missing option '--to'" in assert_one_line(missing, 2, command="restore")


def test_line_breaks_in_input_stay_on_one_line(sample: sa.Engine, history_url: str) -> None:
    result = vestige(history_url, "history", "Package\nDROP TABLE package;", "1")
    assert "\\n" in assert_one_line(result, ExitCode.BAD_INPUT, command="history")


def package_transactions(engine: sa.Engine) -> list[int]:
    """The transactions that wrote package 1's versions, oldest first."""
    with engine.connect() as conn:
        query = sa.text("SELECT transaction_id FROM package_version WHERE id = 1 ORDER BY 1")
        return list(conn.execute(query).scalars())


def test_declining_a_restore_exits_4_and_changes_nothing(
    sample: sa.Engine, history_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_history, "stdin_is_terminal", lambda: True)
    before = snapshot(sample)
    earlier = str(package_transactions(sample)[1])
    result = vestige(history_url, "restore", "Package", "1", "--to", earlier, input="n\n")
    assert assert_one_line(result, ExitCode.DECLINED, command="restore") == DECLINED
    assert snapshot(sample) == before


def test_ctrl_c_in_a_command_is_one_line_and_exit_130(
    sample: sa.Engine, history_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def pressed_ctrl_c(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    # Ctrl-C while the command reads the history (a real SIGINT raises the same exception)
    monkeypatch.setattr(cli_history, "history", pressed_ctrl_c)
    result = vestige(history_url, "history", "Package", "1", "--json")
    assert assert_one_line(result, ExitCode.INTERRUPTED, command="history") == INTERRUPTED
    assert json.loads(result.stdout) == {"error": INTERRUPTED, "exit_code": 130}
