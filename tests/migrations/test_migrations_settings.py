"""``on_drop_column``: ``-x`` wins over ``[tool.vestige.migrations]``; bad values refused."""

from __future__ import annotations

from typing import Any

import pytest

from vestige.errors import ConfigError
from vestige.migrations.autogenerate import migrations_section, on_drop_column_setting


class _Environment:
    def __init__(self, x: dict[str, str]) -> None:
        self.x = x

    def get_x_argument(self, as_dictionary: bool = False) -> dict[str, str]:
        return self.x


class _Context:
    def __init__(self, **x: str) -> None:
        self.environment_context: Any = _Environment(x)


def test_default_keeps_history() -> None:
    assert on_drop_column_setting(_Context()) == "keep"


def test_x_argument_wins() -> None:
    assert on_drop_column_setting(_Context(on_drop_column="drop")) == "drop"


def test_bad_value_is_refused() -> None:
    with pytest.raises(ConfigError, match="on_drop_column must be 'keep' or 'drop', not 'purge'"):
        on_drop_column_setting(_Context(on_drop_column="purge"))


def test_section_keys_are_checked() -> None:
    assert migrations_section({"migrations": {"on_drop_column": "drop"}}) == {
        "on_drop_column": "drop"
    }
    with pytest.raises(
        ConfigError, match=r"unknown key\(s\) in \[tool.vestige.migrations\]: on_drop"
    ):
        migrations_section({"migrations": {"on_drop": "drop"}})
