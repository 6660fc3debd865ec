"""``vestige check``: is versioning still whole after the migrations ran?

One call, :func:`check`, returns a list of :class:`Finding` (empty when all is well):

- the revision history has a single head and the database is at it;
- Alembic's comparison of the models (version tables, ``transaction`` and plugin tables
  included) with the database finds nothing; a missing version table, a missing or
  mistyped version column and a missing ``transaction`` or plugin table each get their
  own message. Nullable version columns the models no longer have are history kept on
  purpose and pass;
- with native versioning on PostgreSQL, every audit function and trigger exists and is
  the one Continuum would write for the current columns, and ``transaction`` has its
  trigger.

About 410 lines in one module: the three checks read one connection and one metadata,
and their findings share one table of messages and fixes.
"""

from __future__ import annotations

import configparser
import os
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError

from vestige.catalogue import association_tables, planned_version_tables, versioned_models
from vestige.errors import ConfigError
from vestige.migrations import native
from vestige.migrations.guard import check_version_tables, kept_history_column
from vestige.versioning.setup import versioning_manager

__all__ = ["CheckReport", "Finding", "check", "models_metadata", "project_alembic_config"]

UPGRADE = "alembic upgrade head"
AUTOGENERATE = "alembic revision --autogenerate -m '...', review it, then alembic upgrade head"

# kind: (message, fix); both formatted with the finding's details.
MESSAGES: dict[str, tuple[str, str]] = {
    "multiple-heads": (
        "the revision history has {count} heads ({heads})",
        "alembic merge -m 'merge heads' heads, then alembic upgrade head",
    ),
    "not-at-head": ("the database is at {current}, the head is {head}", UPGRADE),
    "missing-version-table": (
        "version table of {model} is missing: its changes are not recorded",
        AUTOGENERATE,
    ),
    "missing-version-column": (
        "column {column} of {base} is missing: versions cannot record it",
        AUTOGENERATE,
    ),
    "version-column-type": (
        "column {column} is {found}, the models say {expected}",
        AUTOGENERATE,
    ),
    "missing-table": ("{what} table is missing", AUTOGENERATE),
    "schema-diff": ("the models differ from the database: {diff}", AUTOGENERATE),
    "missing-transaction-trigger": (
        "native versioning: the transaction trigger (or hstore) is missing, so no trigger "
        "knows the transaction and nothing is recorded",
        AUTOGENERATE + " (Vestige adds native.install_transaction_trigger())",
    ),
    "missing-trigger": (
        "native versioning: audit trigger {trigger} or function {function} is missing: "
        "nothing is recorded",
        AUTOGENERATE + " (Vestige adds native.sync_audit_trigger(...))",
    ),
    "stale-trigger": (
        "native versioning: audit function {function} does not match the current columns",
        AUTOGENERATE + " (Vestige adds native.sync_audit_trigger(...))",
    ),
}


@dataclass(frozen=True)
class Finding:
    """One thing wrong, on one line: where, what, and the fix.

    Attributes:
        kind: A stable identifier (``missing-version-table``, ``stale-trigger``, ...).
        table: The table concerned (``alembic_version`` for history problems).
        message: What is wrong and what it means.
        fix: What to run or change.
    """

    kind: str
    table: str
    message: str
    fix: str

    @classmethod
    def of(cls, kind: str, table: str, **details: Any) -> Finding:
        message, fix = MESSAGES[kind]
        return cls(kind, table, message.format(**details), fix.format(**details))

    def line(self) -> str:
        """The finding as printed: ``table: message; fix: fix``."""
        return f"{self.table}: {self.message}; fix: {self.fix}"

    def to_dict(self) -> dict[str, str]:
        """The finding as in ``vestige check --json``: kind, table, message, fix."""
        return asdict(self)


@dataclass(frozen=True)
class CheckReport:
    """What :func:`check` found.

    Attributes:
        findings: Everything wrong, most fundamental first; empty when all is well.
        heads: The head revision(s) of the history.
        version_tables: How many version tables the models have.
        native_tables: How many of them are written by native triggers.
        lint: ``None`` when the pending migrations were not linted, else ``"done"`` or
            ``"skipped"`` (see :meth:`with_lint`).
    """

    findings: list[Finding]
    heads: tuple[str, ...]
    version_tables: int
    native_tables: int
    lint: str | None = None

    @property
    def ok(self) -> bool:
        return not self.findings

    def with_lint(self, findings: list[Finding] | None) -> CheckReport:
        """This report with the lint's findings added; ``None`` means the lint was skipped."""
        return replace(
            self,
            findings=[*self.findings, *(findings or [])],
            lint="skipped" if findings is None else "done",
        )

    def to_dict(self) -> dict[str, Any]:
        """The report as ``vestige check --json`` prints it."""
        data: dict[str, Any] = {
            "ok": self.ok,
            "heads": list(self.heads),
            "version_tables": self.version_tables,
            "native_tables": self.native_tables,
            "findings": [finding.to_dict() for finding in self.findings],
        }
        if self.lint is not None:
            data["lint"] = self.lint
        return data


def models_metadata() -> sa.MetaData:
    """The metadata the imported versioned models share.

    Raises:
        ConfigError: No versioned model is imported, or they span several metadata.
    """
    found = {id(m.table.metadata): m.table.metadata for m in versioned_models().values()}
    if len(found) != 1:
        raise ConfigError(
            "the models module declares no versioned model"
            if not found
            else "the versioned models use several MetaData objects; check one at a time"
        )
    return next(iter(found.values()))


NO_ALEMBIC_CONFIG = (
    "no Alembic configuration in {root}: add alembic.ini or [tool.alembic] to pyproject.toml, "
    "or name the file with -c or ALEMBIC_CONFIG"
)
NO_CONFIG_FILE = "no Alembic config file at {path}; check -c or ALEMBIC_CONFIG"
BAD_CONFIG = "the Alembic configuration cannot be read: {reason}"


def project_alembic_config(
    project_root: Path,
    database_url: str | None = None,
    *,
    config_files: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
) -> Config:
    """The project's Alembic config, read as the ``alembic`` command reads it.

    Like ``alembic``, it reads an ini file and ``[tool.alembic]`` of a pyproject.toml,
    either or both: the files named (``-c``, up to once each), else ``ALEMBIC_CONFIG``
    (either kind), else ``alembic.ini`` and ``pyproject.toml`` of ``project_root``.
    Options in the ini file win, as they do for ``alembic``.

    Args:
        project_root: The directory of the project's pyproject.toml.
        database_url: Set as ``sqlalchemy.url`` when given.
        config_files: Files named on the command line (``-c``), relative to the cwd.
        environ: The environment (default ``os.environ``), for ``ALEMBIC_CONFIG``.

    Raises:
        ConfigError: A file named does not exist, a file cannot be parsed, or nothing
            gives a ``script_location``.
    """
    env = os.environ if environ is None else environ
    ini, toml = _alembic_files(project_root, config_files, env.get("ALEMBIC_CONFIG"))
    config = Config(
        file_=str(ini) if ini and ini.is_file() else None,
        toml_file=str(toml) if toml and toml.is_file() else None,
    )
    try:
        location = config.get_alembic_option("script_location")
    except (configparser.Error, tomllib.TOMLDecodeError, UnicodeDecodeError, CommandError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(BAD_CONFIG.format(reason=reason)) from None
    if not location:
        raise ConfigError(NO_ALEMBIC_CONFIG.format(root=project_root))
    if database_url is not None:
        config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def _alembic_files(
    project_root: Path, named: Sequence[str], from_environ: str | None
) -> tuple[Path | None, Path | None]:
    """``(ini file, pyproject.toml)`` as alembic's command line picks them."""
    ini: Path | None = project_root / "alembic.ini"
    toml: Path | None = project_root / "pyproject.toml"
    given = list(named) or ([from_environ] if from_environ else [])
    if given:
        # a file named replaces the default of its kind only, as for `alembic -c`
        for name in given:
            if not Path(name).is_file():
                raise ConfigError(NO_CONFIG_FILE.format(path=name))
        tomls = [Path(name) for name in given if Path(name).name == "pyproject.toml"]
        inis = [Path(name) for name in given if Path(name).name != "pyproject.toml"]
        if len(tomls) > 1 or len(inis) > 1:
            raise ConfigError(
                BAD_CONFIG.format(reason="name at most one ini file and one pyproject.toml")
            )
        ini = inis[0] if inis else ini
        toml = tomls[0] if tomls else toml
    return ini, toml


def check(
    config: Config, engine: sa.Engine, metadata: sa.MetaData, manager: Any = None
) -> CheckReport:
    """Check that the database is at head and versioning is complete and current.

    Args:
        config: The Alembic config (its ``script_location`` is read, env.py is not run).
        engine: The database to check.
        metadata: The models' metadata, version tables configured.
        manager: The Continuum manager (default: the global one).

    Returns:
        The report; its findings are empty when everything checks out.

    Raises:
        VersionTablesMissing: The metadata itself lacks version tables.
    """
    manager = manager if manager is not None else versioning_manager
    check_version_tables(metadata)
    heads = tuple(ScriptDirectory.from_config(config).get_heads())
    native_count = len(native.expected_audit_triggers(metadata, manager))
    version_count = len(_version_tables(metadata, manager))
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_heads()
        findings = _history(heads, current)
        if not findings:
            findings = _comparison(connection, metadata, manager)
            if connection.dialect.name == "postgresql":
                findings += _native(connection, metadata, manager)
    return CheckReport(findings, heads, version_count, native_count)


def _history(heads: Sequence[str], current: Sequence[str]) -> list[Finding]:
    if len(heads) > 1:
        return [
            Finding.of(
                "multiple-heads", "alembic_version", count=len(heads), heads=", ".join(heads)
            )
        ]
    if set(current) != set(heads):
        return [
            Finding.of(
                "not-at-head",
                "alembic_version",
                current=", ".join(current) or "base (empty)",
                head=heads[0] if heads else "base",
            )
        ]
    return []


def _comparison(connection: sa.Connection, metadata: sa.MetaData, manager: Any) -> list[Finding]:
    context = MigrationContext.configure(
        connection,
        opts={
            "compare_type": True,
            "target_metadata": metadata,
            "include_object": kept_history_column(metadata),
        },
    )
    version_tables = _version_tables(metadata, manager)
    special = _special_tables(metadata, manager)
    diffs = list(_flatten(compare_metadata(context, metadata)))
    # A missing table is one finding, not one more per index it would have had.
    missing = {diff[1].name for diff in diffs if diff[0] == "add_table"}
    return [
        _finding(diff, version_tables, special)
        for diff in diffs
        if diff[0] == "add_table" or _table_of(diff) not in missing
    ]


def _version_tables(metadata: sa.MetaData, manager: Any) -> dict[str, tuple[str, str]]:
    """``{version table: (what it versions, base table)}``, association tables included."""
    found = {
        name: (planned.model or name, planned.base)
        for name, planned in planned_version_tables(metadata, manager).items()
    }
    for association in association_tables(manager):
        if association.version_table.metadata is metadata:
            base = association.table.name
            found[association.version_table.name] = (f"the {base} association", base)
    return found


def _special_tables(metadata: sa.MetaData, manager: Any) -> dict[str, str]:
    """``{table: what it is}`` for ``transaction`` and Continuum plugin tables."""
    found: dict[str, str] = {}
    transaction_cls = getattr(manager, "transaction_cls", None)
    table = getattr(transaction_cls, "__table__", None)
    if isinstance(table, sa.Table):
        found[table.name] = "the transaction"
    for plugin in getattr(manager, "plugins", []):
        for attribute in ("model_class", "activity_cls"):
            table = getattr(getattr(plugin, attribute, None), "__table__", None)
            if isinstance(table, sa.Table):
                found[table.name] = f"the {type(plugin).__name__} plugin's"
    return found


def _flatten(diffs: Iterable[Any]) -> Iterable[tuple[Any, ...]]:
    for diff in diffs:
        if isinstance(diff, list):
            yield from diff
        else:
            yield diff


def _finding(
    diff: tuple[Any, ...], version_tables: dict[str, tuple[str, str]], special: dict[str, str]
) -> Finding:
    kind = diff[0]
    if kind == "add_table":
        name = diff[1].name
        if name in version_tables:
            return Finding.of("missing-version-table", name, model=version_tables[name][0])
        if name in special:
            return Finding.of("missing-table", name, what=special[name])
    if kind == "add_column" and diff[2] in version_tables:
        base = version_tables[diff[2]][1]
        return Finding.of("missing-version-column", diff[2], column=diff[3].name, base=base)
    if kind == "modify_type" and diff[2] in version_tables:
        return Finding.of(
            "version-column-type", diff[2], column=diff[3], found=diff[5], expected=diff[6]
        )
    return Finding.of("schema-diff", _table_of(diff), diff=_describe(diff))


def _table_of(diff: tuple[Any, ...]) -> str:
    for item in diff[1:]:
        if isinstance(item, sa.Table):
            return item.name
        table = getattr(item, "table", None)
        if isinstance(table, sa.Table):
            return table.name
    return str(diff[2]) if len(diff) > 2 and isinstance(diff[2], str) else "?"


def _describe(diff: tuple[Any, ...]) -> str:
    kind = str(diff[0])
    if kind in ("add_table", "remove_table"):
        return f"{kind.replace('_', ' ')} {diff[1].name}"
    if kind in ("add_column", "remove_column"):
        return f"{kind.replace('_', ' ')} {diff[3].name}"
    if kind.startswith("modify_"):
        return f"{kind.replace('_', ' ')} of {diff[3]}: {diff[5]!r} -> {diff[6]!r}"
    name = getattr(diff[1], "name", None)
    return f"{kind.replace('_', ' ')} {name or diff[1]}"


def _native(connection: sa.Connection, metadata: sa.MetaData, manager: Any) -> list[Finding]:
    expected = native.expected_audit_triggers(metadata, manager)
    if not expected:
        return []
    findings: list[Finding] = []
    transaction_table = manager.transaction_cls.__table__.name
    if not native.transaction_trigger_present(connection, transaction_table):
        findings.append(Finding.of("missing-transaction-trigger", transaction_table))
    for name, trigger in sorted(expected.items()):
        names = {
            "trigger": native.audit_trigger_name(name),
            "function": native.audit_function_name(name),
        }
        body = native.database_function_body(connection, names["function"])
        if body is None or not native.trigger_present(connection, name, names["trigger"]):
            findings.append(Finding.of("missing-trigger", name, **names))
        elif body != trigger.body():
            findings.append(Finding.of("stale-trigger", name, **names))
    return findings
