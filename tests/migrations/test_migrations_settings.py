"""``on_drop_column``: ``-x`` wins over ``[tool.vestige.migrations]``; bad values refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from vestige.config import MigrationSettings, load_settings
from vestige.errors import ConfigError
from vestige.migrations import comparison_options
from vestige.migrations.autogenerate import on_drop_column_setting


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
    assert on_drop_column_setting(_Context(), "drop") == "drop"


def test_x_argument_wins() -> None:
    assert on_drop_column_setting(_Context(on_drop_column="drop")) == "drop"
    assert on_drop_column_setting(_Context(on_drop_column="keep"), "drop") == "keep"


def test_bad_value_is_refused() -> None:
    with pytest.raises(ConfigError, match="on_drop_column must be 'keep' or 'drop', not 'purge'"):
        on_drop_column_setting(_Context(on_drop_column="purge"))


def _pyproject(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "pyproject.toml"
    path.write_text(f"[tool.vestige.migrations]\n{body}\n")
    return path


def test_section_is_read_into_the_settings(tmp_path: Path) -> None:
    settings = load_settings(_pyproject(tmp_path, 'on_drop_column = "drop"'))
    assert settings.migrations == MigrationSettings(on_drop_column="drop")
    assert load_settings(_pyproject(tmp_path, "")).migrations.on_drop_column == "keep"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('on_drop = "drop"', r"unknown key\(s\) in \[tool.vestige.migrations\]: on_drop"),
        (
            'on_drop_column = "purge"',
            r"migrations.on_drop_column must be one of keep, drop, not 'purge'",
        ),
    ],
)
def test_section_is_checked(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(_pyproject(tmp_path, body))


def test_comparison_options_carry_the_setting(tmp_path: Path) -> None:
    import sqlalchemy as sa

    settings = load_settings(_pyproject(tmp_path, 'on_drop_column = "drop"'))
    hook = comparison_options(sa.MetaData(), settings)["process_revision_directives"]
    assert hook.keywords == {"on_drop_column": "drop"}
    default = comparison_options(sa.MetaData())["process_revision_directives"]
    assert default.keywords == {"on_drop_column": "keep"}
