"""Retention policy: what history to keep, read from ``pyproject.toml`` or a TOML file.

The policy lives in ``[tool.vestige.retention]`` (or at the top level of a file passed
with ``--policy FILE``)::

    keep_days = 365          # a superseded version stays 365 days after it was superseded
    keep_versions = 5        # the 5 newest versions of every record always stay
    deleted_keep_days = 90   # a deleted record's whole history goes 90 days after the delete

    [models.Release]         # per model; in pyproject.toml: [tool.vestige.retention.models.Release]
    keep_days = 30

A model's rules are the top-level rules with its own table laid over them. A rule that is
not set does not constrain; a model with neither ``keep_days`` nor ``keep_versions`` keeps
every superseded version, and one without ``deleted_keep_days`` keeps deleted records'
histories under the ordinary rules.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from vestige.errors import ConfigError

__all__ = ["RULE_KEYS", "Policy", "Rules", "load_policy", "parse_policy"]

RULE_KEYS = ("keep_days", "keep_versions", "deleted_keep_days")
MODELS_KEY = "models"
PYPROJECT_SECTION = "[tool.vestige.retention]"

NO_POLICY = (
    "no retention policy: add {section} to pyproject.toml (e.g. keep_days = 365) "
    "or pass --policy FILE"
)
MAX_DAYS = 100_000
MAX_VERSIONS = 2**31 - 1
MAX_POLICY_BYTES = 1 << 20
TOO_LARGE = "{where}: {key} must be at most {limit:,} ({why}), not {value!r}"
WHY = {
    "keep_days": "about 270 years",
    "deleted_keep_days": "about 270 years",
    "keep_versions": "2**31 - 1",
}
NOT_UTF8 = "policy file {path} is not UTF-8 text ({reason} at byte {at}); a policy is a TOML file"
POLICY_TOO_BIG = (
    "policy file {path} is larger than {limit:,} bytes; a policy is a few lines of TOML"
)
NO_RULES = (
    "the retention policy in {source} sets no rule; set at least one of "
    "keep_days, keep_versions, deleted_keep_days"
)


@dataclass(frozen=True)
class Rules:
    """The retention rules of one model; ``None`` means the rule is not set.

    Attributes:
        keep_days: A superseded version stays until this many days after the transaction
            that superseded it.
        keep_versions: The newest N versions of every record always stay.
        deleted_keep_days: A deleted record's whole history (tombstone included) goes once
            the delete is this many days old.
    """

    keep_days: int | None = None
    keep_versions: int | None = None
    deleted_keep_days: int | None = None

    @property
    def prunes_superseded(self) -> bool:
        """Whether superseded versions of live records can be pruned at all."""
        return self.keep_days is not None or self.keep_versions is not None

    @property
    def is_empty(self) -> bool:
        """Whether no rule is set."""
        return not self.prunes_superseded and self.deleted_keep_days is None


@dataclass(frozen=True)
class Policy:
    """A whole retention policy: default rules and per-model overrides.

    Attributes:
        default: The top-level rules; they also apply to many-to-many association tables.
        models: Per model name, the rules with the model's own table laid over the default.
        source: Where the policy was read from, for messages.
    """

    default: Rules
    models: Mapping[str, Rules] = field(default_factory=dict)
    source: str = PYPROJECT_SECTION

    def for_model(self, name: str) -> Rules:
        """The rules that apply to the model called ``name``."""
        return self.models.get(name, self.default)

    def check_models(self, known: Iterable[str]) -> None:
        """Refuse model names the policy mentions that are not versioned models.

        Raises:
            ConfigError: Naming the unknown model(s) and the known ones.
        """
        names = sorted(known)
        unknown = sorted(set(self.models) - set(names))
        if unknown:
            raise ConfigError(
                f"unknown model(s) in the retention policy ({self.source}): "
                f"{', '.join(unknown)}; versioned models are: {', '.join(names) or 'none'}"
            )


def parse_policy(table: Mapping[str, Any], source: str = PYPROJECT_SECTION) -> Policy:
    """Validate a retention table and build its :class:`Policy`.

    Args:
        table: The retention table: rule keys and an optional ``models`` table.
        source: Where the table came from, used in error messages.

    Raises:
        ConfigError: Unknown keys, non-table model entries, negative or non-integer
            numbers, or no rule at all.

    Example:
        >>> parse_policy({"keep_days": 30, "models": {"Release": {"keep_days": 7}}}).for_model(
        ...     "Release").keep_days
        7
    """
    default = _rules(table, source, allow_models=True)
    models_table = table.get(MODELS_KEY, {})
    if not isinstance(models_table, dict):
        raise ConfigError(f"{source}: 'models' must be a table of model names")
    models: dict[str, Rules] = {}
    for name, overrides in models_table.items():
        where = f"{source} models.{name}"
        if not isinstance(overrides, dict):
            raise ConfigError(f"{where} must be a table of rules, e.g. keep_days = 30")
        own = _rules(overrides, where, allow_models=False)
        models[name] = replace(
            default, **{key: getattr(own, key) for key in RULE_KEYS if key in overrides}
        )
    policy = Policy(default=default, models=models, source=source)
    if default.is_empty and all(rules.is_empty for rules in models.values()):
        raise ConfigError(NO_RULES.format(source=source))
    return policy


def _rules(table: Mapping[str, Any], where: str, *, allow_models: bool) -> Rules:
    allowed = set(RULE_KEYS) | ({MODELS_KEY} if allow_models else set())
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(
            f"unknown key(s) in {where}: {', '.join(unknown)}; "
            f"known keys are {', '.join(sorted(allowed))}"
        )
    values: dict[str, int] = {}
    for key in RULE_KEYS:
        if key not in table:
            continue
        value = table[key]
        # bool is an int in Python; TOML's true is not a number of days
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{where}: {key} must be a whole number >= 0, not {value!r}")
        limit = MAX_VERSIONS if key == "keep_versions" else MAX_DAYS
        if value > limit:
            raise ConfigError(
                TOO_LARGE.format(where=where, key=key, limit=limit, why=WHY[key], value=value)
            )
        values[key] = value
    return Rules(**values)


def _table(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            # bounded: the path may be a device or a pipe that never ends
            raw = handle.read(MAX_POLICY_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read policy file {path}: {exc.strerror}") from None
    if len(raw) > MAX_POLICY_BYTES:
        raise ConfigError(POLICY_TOO_BIG.format(path=path, limit=MAX_POLICY_BYTES))
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(NOT_UTF8.format(path=path, reason=exc.reason, at=exc.start)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"policy file {path} is not valid TOML: {exc}") from None


def load_policy(tool_table: Mapping[str, Any], policy_file: Path | None = None) -> Policy:
    """Read the policy from a file, else from ``[tool.vestige]``'s ``retention`` table.

    Args:
        tool_table: The whole ``[tool.vestige]`` table (``Settings.raw``).
        policy_file: A TOML file holding the rules at its top level, or a
            ``pyproject.toml`` holding ``[tool.vestige.retention]``.

    Raises:
        ConfigError: The file is missing or invalid, or there is no policy at all.
    """
    if policy_file is not None:
        data = _read_toml(policy_file)
        if "tool" in data:
            retention = _table(_table(data.get("tool")).get("vestige")).get("retention")
            if not isinstance(retention, dict):
                raise ConfigError(
                    f"{policy_file} has no {PYPROJECT_SECTION} table; "
                    "put the rules there or at the top level of a separate file"
                )
            return parse_policy(retention, f"{policy_file} {PYPROJECT_SECTION}")
        return parse_policy(data, str(policy_file))
    retention = tool_table.get("retention")
    if retention is None:
        raise ConfigError(NO_POLICY.format(section=PYPROJECT_SECTION))
    if not isinstance(retention, dict):
        raise ConfigError(f"{PYPROJECT_SECTION} must be a table")
    return parse_policy(retention)
