"""Retention policy parsing and validation (no database)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from vestige.errors import ConfigError
from vestige.retention.policy import (
    MAX_DAYS,
    MAX_POLICY_BYTES,
    MAX_VERSIONS,
    NO_POLICY,
    Rules,
    load_policy,
    parse_policy,
)


def test_top_level_rules_are_the_default_and_models_override_them() -> None:
    policy = parse_policy(
        {
            "keep_days": 365,
            "keep_versions": 5,
            "deleted_keep_days": 90,
            "models": {"Release": {"keep_days": 30}, "Package": {"keep_versions": 0}},
        }
    )
    assert policy.default == Rules(365, 5, 90)
    assert policy.for_model("Release") == Rules(30, 5, 90)
    assert policy.for_model("Package") == Rules(365, 0, 90)
    assert policy.for_model("License") == policy.default


def test_unset_rules_stay_unset() -> None:
    policy = parse_policy({"deleted_keep_days": 7})
    assert policy.default == Rules(deleted_keep_days=7)
    assert not policy.default.prunes_superseded
    assert parse_policy({"keep_versions": 3}).default.prunes_superseded


def test_a_model_may_carry_the_only_rule() -> None:
    policy = parse_policy({"models": {"Release": {"keep_days": 30}}})
    assert policy.default.is_empty
    assert policy.for_model("Release") == Rules(keep_days=30)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"keep_day": 3}, "unknown key(s) in [tool.vestige.retention]: keep_day; known keys"),
        ({"keep_days": -1}, "keep_days must be a whole number >= 0, not -1"),
        ({"keep_days": 1.5}, "keep_days must be a whole number >= 0, not 1.5"),
        ({"keep_versions": "5"}, "keep_versions must be a whole number >= 0, not '5'"),
        ({"deleted_keep_days": True}, "deleted_keep_days must be a whole number >= 0, not True"),
        ({"keep_days": 1, "models": {"Release": {"keep": 1}}}, "models.Release: keep"),
        ({"keep_days": 1, "models": {"Release": {"keep_days": -3}}}, "not -3"),
        ({"keep_days": 1, "models": {"Release": 30}}, "models.Release must be a table"),
        ({"keep_days": 1, "models": {"Release": {"models": {}}}}, "unknown key(s)"),
        ({"keep_days": 1, "models": ["Release"]}, "'models' must be a table"),
        ({}, "sets no rule"),
        ({"models": {"Release": {}}}, "sets no rule"),
    ],
)
def test_bad_policies_are_refused_with_one_line(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_policy(table)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_unknown_models_are_named_with_the_known_ones() -> None:
    parse_policy({"keep_days": 1, "models": {"Package": {}}}).check_models(["Package"])
    policy = parse_policy({"keep_days": 1, "models": {"Relase": {}, "Package": {}}})
    with pytest.raises(ConfigError, match="unknown model") as error:
        policy.check_models(["Package", "Release"])
    assert "policy ([tool.vestige.retention]): Relase; versioned models are: Package, Release" in (
        str(error.value)
    )


def test_a_policy_file_holds_the_rules_at_its_top_level(tmp_path: Path) -> None:
    path = tmp_path / "retention.toml"
    path.write_text("keep_days = 10\n[models.Release]\nkeep_versions = 2\n")
    policy = load_policy({"retention": {"keep_days": 999}}, path)
    assert policy.default == Rules(keep_days=10)
    assert policy.for_model("Release") == Rules(keep_days=10, keep_versions=2)
    assert policy.source == str(path)


def test_a_pyproject_can_be_the_policy_file(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text("[tool.vestige.retention]\nkeep_versions = 4\n")
    assert load_policy({}, path).default == Rules(keep_versions=4)
    path.write_text("[tool.other]\nx = 1\n")
    with pytest.raises(ConfigError, match=r"has no \[tool.vestige.retention\] table"):
        load_policy({}, path)


def test_policy_from_settings_and_its_absence() -> None:
    assert load_policy({"retention": {"keep_days": 3}}).default == Rules(keep_days=3)
    with pytest.raises(ConfigError) as error:
        load_policy({})
    assert str(error.value) == NO_POLICY.format(section="[tool.vestige.retention]")


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "cannot read policy file"), ("keep_days = = 3", "is not valid TOML")],
)
def test_unreadable_policy_files(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "policy.toml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_policy({}, path)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"keep_days": 1_000_000}, "keep_days must be at most 100,000 (about 270 years)"),
        ({"deleted_keep_days": 100_001}, "deleted_keep_days must be at most 100,000"),
        ({"keep_versions": 2**63 - 1}, "keep_versions must be at most 2,147,483,647"),
        ({"keep_days": 1, "models": {"Release": {"keep_days": 10**20}}}, "models.Release"),
    ],
)
def test_values_beyond_what_a_date_or_a_count_holds_are_refused(
    table: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_policy(table)
    assert parse_policy({"keep_days": MAX_DAYS, "keep_versions": MAX_VERSIONS}).default == Rules(
        MAX_DAYS, MAX_VERSIONS
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (bytes(range(128, 256)), "is not UTF-8 text (invalid start byte at byte 0)"),
        ("keep_days = 1\n".encode("utf-16"), "is not UTF-8 text"),
        (b"keep_days = 1\n" + b"#" * MAX_POLICY_BYTES, "is larger than 1,048,576 bytes"),
    ],
    ids=["binary", "utf-16", "huge"],
)
def test_policy_files_that_are_not_small_utf8_text(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "policy.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=re.escape(message)) as error:
        load_policy({}, path)
    assert "\n" not in str(error.value)
