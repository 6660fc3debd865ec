"""Fuzzing the command line: generated argument lists for every command and option.

On a migrated database with the sample data, on SQLite and PostgreSQL, hypothesis builds
argument lists from 64-bit edges, odd dates, unicode, quotes and SQL fragments, empty
strings and odd or huge policy files. Whatever it builds, a run must end with an exit
code from the command's documented table, no traceback, at most two lines on stderr, and,
when it fails, a database whose every table is as it was (a checksum of all rows).
A run that succeeds may change the database (a restore, a prune): that is its job.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import hypothesis.strategies as st
import pytest
import sqlalchemy as sa
from alembic import command
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from sqlalchemy.orm import Session

from models.sample_data import write_sample_data
from tests.support.backends import BACKEND_PARAMS
from tests.support.history_databases import module_database
from tests.support.project import ROOT, alembic_config
from vestige.cli import app
from vestige.errors import COMMAND_EXIT_CODES

# more for a longer hunt: VESTIGE_FUZZ_EXAMPLES=2000 pytest tests/cli/test_cli_fuzz.py
EXAMPLES_PER_BACKEND = int(os.environ.get("VESTIGE_FUZZ_EXAMPLES", "150"))

INTEGER_EDGES = [
    0,
    1,
    -1,
    2,
    3,
    5,
    2**15,
    2**31 - 1,
    2**31,
    -(2**31) - 1,
    2**53 + 1,
    2**63 - 1,
    2**63,
    -(2**63),
    -(2**63) - 1,
    2**64,
    10**30,
]
ODD_TEXT = [
    "",
    " ",
    "'",
    '"',
    "\\",
    "%",
    "%s",
    "1; DROP TABLE package; --",
    "' OR '1'='1",
    "1) UNION SELECT * FROM transaction --",
    "Robert'); DROP TABLE package_version;--",
    "1,2",
    ",",
    "1e400",
    "NaN",
    "inf",
    "-0",
    "0x10",
    "\u0663",  # ARABIC-INDIC DIGIT THREE: str.isdigit() says yes
    "\uff11\uff12",  # FULLWIDTH 1 2
    "\x00",
    "\n",
    "line\nbreak",
    "caf\u00e9",
    "\U0001f642",
    "\u202e1",
    "x" * 5000,
]
ODD_TIMES = [
    "0001-01-01T00:00:00+05:00",
    "9999-12-31T23:59:59-05:00",
    "0001-01-01",
    "9999-12-31T23:59:59",
    "2026-02-30",
    "2026-01-01T12:00:00",
    "2026-01-01T12:00:00Z",
    "2026-01-01T12:00:00+14:00",
    "2026-01-01T25:00:00",
    "1970-01-01T00:00:00-00:01",
    "2026-W01",
    "now",
]
MODEL_NAMES = ["Package", "package", "Release", "License", "Maintainer", "Transaction"]
MODEL_NAMES += ["PackageVersion", "Nope", "Base", "__class__", "package_version"]
RELATIONS = ["releases", "maintainers", "license", "package", "nope", "__class__", "metadata"]
MODULES = ["models", "models.catalog", "no_such_module", "", "models.nope", "1bad", "../models"]


@dataclass(frozen=True)
class Fuzz:
    """What one backend's fuzzing runs against."""

    url: str
    engine: sa.Engine
    tables: tuple[sa.Table, ...]
    policies: tuple[str, ...]


def checksum(fuzz: Fuzz) -> str:
    """A digest of every row of every table in the database."""
    digest = hashlib.sha256()
    with fuzz.engine.connect() as conn:
        for table in fuzz.tables:
            rows = sorted(repr(tuple(row)) for row in conn.execute(sa.select(table)))
            digest.update(f"{table.name}:{len(rows)}:".encode())
            for row in rows:
                digest.update(row.encode())
    return digest.hexdigest()


def policy_files(directory: Path) -> tuple[str, ...]:
    files = {
        "ok.toml": b"keep_days = 30\nkeep_versions = 2\n",
        "huge_days.toml": b"keep_days = 1000000\n",
        "huge_versions.toml": b"keep_versions = 99999999999999999999\n",
        "negative.toml": b"deleted_keep_days = -1\n",
        "unknown_model.toml": b"keep_days = 1\n[models.Nope]\nkeep_days = 2\n",
        "quotes.toml": b'keep_days = "1; DROP TABLE package"\n',
        "empty.toml": b"",
        "binary.toml": bytes(range(256)),
        "utf16.toml": "keep_days = 1\n".encode("utf-16"),
        "pyproject.toml": b"[tool.vestige.retention]\nkeep_days = 400\n",
        "big.toml": b"# " + b"x" * (2 << 20) + b"\nkeep_days = 1\n",
        "caf\u00e9 \U0001f642.toml": b"keep_versions = 3\n",
    }
    for name, content in files.items():
        (directory / name).write_bytes(content)
    (directory / "a_directory.toml").mkdir()
    paths = [str(directory / name) for name in [*files, "a_directory.toml", "missing.toml"]]
    return (*paths, "", "/dev/null", "/dev/zero")


@pytest.fixture(scope="module", params=BACKEND_PARAMS)
def fuzz(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fuzz]:
    """A migrated database with the sample data, and policy files, per backend."""

    def migrate(url: str) -> None:
        command.upgrade(alembic_config(url), "head")

    cwd = Path.cwd()
    os.chdir(ROOT)
    with module_database(request, tmp_path_factory, migrate) as url:
        engine = sa.create_engine(url)
        with Session(engine) as session:
            write_sample_data(session)
        metadata = sa.MetaData()
        metadata.reflect(engine)  # every table, alembic_version included
        tables = tuple(metadata.tables[name] for name in sorted(metadata.tables))
        try:
            yield Fuzz(url, engine, tables, policy_files(tmp_path_factory.mktemp("fuzz")))
        finally:
            os.chdir(cwd)
            engine.dispose()


integers = st.one_of(st.sampled_from(INTEGER_EDGES), st.integers(-(2**70), 2**70)).map(str)
wild_values = st.one_of(
    integers, st.sampled_from(ODD_TEXT), st.sampled_from(ODD_TIMES), st.text(max_size=20)
)
wild_models = st.one_of(
    st.sampled_from(MODEL_NAMES), st.sampled_from(ODD_TEXT), st.text(max_size=12)
)


@dataclass(frozen=True)
class Alphabet:
    """Where one argument list draws its values from."""

    values: st.SearchStrategy[str]
    keys: st.SearchStrategy[str]
    models: st.SearchStrategy[str]
    modules: st.SearchStrategy[str]


# Wild: anything, mostly refused at the edge. Plausible: ids and times of the sample data
# (records 1-4, transactions 1-5) with 64-bit edges mixed in, so that runs also reach
# the database, the prompts and the writes.
WILD = Alphabet(
    values=wild_values,
    keys=st.one_of(integers, st.sampled_from(ODD_TEXT), st.text(max_size=10)),
    models=wild_models,
    modules=st.sampled_from(MODULES),
)
real_ids = st.integers(1, 6).map(str)
PLAUSIBLE = Alphabet(
    values=st.one_of(
        real_ids,
        real_ids,
        real_ids,
        st.sampled_from(ODD_TIMES[5:8]),
        st.sampled_from(INTEGER_EDGES).map(str),
    ),
    keys=st.one_of(real_ids, real_ids, real_ids, st.sampled_from(INTEGER_EDGES).map(str)),
    models=st.sampled_from(MODEL_NAMES[:5]),
    modules=st.just("models"),
)


def options(*choices: st.SearchStrategy[list[str]]) -> st.SearchStrategy[list[str]]:
    """Up to four of ``choices`` (repeats allowed), in any order, flattened."""
    picked = st.lists(st.sampled_from(choices), max_size=4)
    return picked.flatmap(lambda chosen: st.tuples(*chosen)).map(
        lambda parts: [arg for part in parts for arg in part]
    )


def flag(name: str) -> st.SearchStrategy[list[str]]:
    return st.just([name])


def with_value(name: str, value: st.SearchStrategy[str]) -> st.SearchStrategy[list[str]]:
    return value.map(lambda v: [name, v])


def argument_lists(policies: tuple[str, ...], alphabet: Alphabet) -> st.SearchStrategy[list[str]]:
    """Argument lists for every command, using every option."""
    values = alphabet.values
    models_option = alphabet.modules.map(lambda module: ["--models", module])
    history = st.tuples(
        alphabet.models,
        alphabet.keys,
        options(
            with_value("--as-of", values),
            st.tuples(values, values).map(lambda pair: ["--diff", *pair]),
            flag("--json"),
            with_value("--limit", values),
            models_option,
        ),
    ).map(lambda parts: ["history", parts[0], parts[1], *parts[2]])
    restore = st.tuples(
        alphabet.models,
        alphabet.keys,
        options(
            with_value("--to", values),
            with_value("--with", st.one_of(st.sampled_from(RELATIONS), st.text(max_size=8))),
            with_value("--user", values),
            flag("--dry-run"),
            flag("--yes"),
            models_option,
        ),
        st.one_of(with_value("--to", values), st.just([])),
        # off a terminal a restore needs one of these, else it refuses at once
        st.sampled_from([["--yes"], ["--dry-run"], ["--json", "--yes"], []]),
    ).map(lambda parts: ["restore", parts[0], parts[1], *parts[2], *parts[3], *parts[4]])
    check = options(flag("--json"), flag("--lint"), models_option).map(lambda o: ["check", *o])
    prune = options(
        with_value("--policy", st.sampled_from(policies)),
        flag("--dry-run"),
        flag("--yes"),
        with_value("--batch-size", values),
        flag("--json"),
        models_option,
    ).map(lambda o: ["prune", *o])
    return st.one_of(history, restore, check, prune)


def test_any_argument_list_ends_cleanly(
    fuzz: Fuzz,
    capsys: pytest.CaptureFixture[str],
    record_property: Callable[[str, object], None],
) -> None:
    ran: list[list[str]] = []
    outcomes: Counter[str] = Counter()

    @settings(
        max_examples=EXAMPLES_PER_BACKEND,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(
        args=st.one_of(
            argument_lists(fuzz.policies, WILD), argument_lists(fuzz.policies, PLAUSIBLE)
        )
    )
    def one_run(args: list[str]) -> None:
        ran.append(args)
        before = checksum(fuzz)
        result = CliRunner().invoke(app, args, env={"DATABASE_URL": fuzz.url}, input="n\n")
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            f"{type(result.exception).__name__}: {result.exception}"
        )
        assert "Traceback" not in result.output
        outcomes[f"{args[0]} {result.exit_code}"] += 1
        assert result.exit_code in COMMAND_EXIT_CODES[args[0]], (result.exit_code, result.stderr)
        assert result.stderr.count("\n") <= 2, result.stderr
        if result.exit_code != 0:
            assert result.stderr.startswith("error: "), result.stderr
            assert checksum(fuzz) == before, result.stderr

    one_run()
    backend = fuzz.engine.dialect.name
    with capsys.disabled():
        print(
            f"\nCLI fuzz [{backend}]: {len(ran)} generated cases ran; "
            f"command and exit code: {dict(sorted(outcomes.items()))}"
        )
    record_property("cli_fuzz_cases", len(ran))
    assert len(ran) >= EXAMPLES_PER_BACKEND
