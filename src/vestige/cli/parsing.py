"""Reading the command line's keys, users and moments, and showing values in tables.

What a person types (``7``, ``a,b``, a user id, a transaction id or an ISO 8601 time)
becomes the model's key types, a user id or a moment; bad input is one line that says
what was wrong and what to give instead.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from vestige.errors import ConfigError
from vestige.history.queries import key_columns
from vestige.versioning.setup import versioning_manager

__all__ = [
    "BAD_KEY",
    "BAD_TX",
    "BAD_USER",
    "BAD_WHEN",
    "INT64_MAX",
    "INT_RANGE",
    "NO_USER_COLUMN",
    "OUT_OF_RANGE_WHEN",
    "parse_key",
    "parse_user",
    "parse_when",
    "show",
]


INT64_MAX = 2**63 - 1

BAD_KEY = "bad key {text!r} for {model}: expected {expected}"
INT_RANGE = "{name} (int) from {low} to {high}"
BAD_WHEN = (
    "bad moment {text!r}: give a transaction id (e.g. 42) or an ISO 8601 time in UTC "
    "(e.g. 2026-01-31T12:00:00)"
)
BAD_TX = "bad transaction id {text!r}: transaction ids go from 1 to {limit}"
OUT_OF_RANGE_WHEN = "bad moment {text!r}: out of range once converted to UTC"
BAD_USER = "bad user id {text!r}: give the id of a user (transaction.user_id)"
NO_USER_COLUMN = "--user needs a user class: transactions here record no user_id"


def parse_key(model: type[Any], text: str) -> tuple[Any, ...]:
    """A primary key typed on the command line, converted to the key columns' types.

    Raises:
        ConfigError: Wrong number of parts, or a part of the wrong type.
    """
    columns = key_columns(model)
    parts = [part.strip() for part in text.split(",")] if len(columns) > 1 else [text.strip()]
    expected = ", ".join(f"{name} ({_python_type(column).__name__})" for name, column in columns)
    bad = ConfigError(BAD_KEY.format(text=text, model=model.__name__, expected=expected))
    if len(parts) != len(columns):
        raise bad
    values = []
    for part, (name, column) in zip(parts, columns, strict=True):
        try:
            values.append(_convert(column, part))
        except OverflowError:
            low, high = _int_range(column) or (0, 0)
            in_range = INT_RANGE.format(name=name, low=low, high=high)
            raise ConfigError(
                BAD_KEY.format(text=text, model=model.__name__, expected=in_range)
            ) from None
        except (TypeError, ValueError):
            raise bad from None
    return tuple(values)


def parse_user(text: str) -> Any:
    """A user id typed on the command line, as the type of ``transaction.user_id``.

    Raises:
        ConfigError: It does not fit that type, or transactions record no user.
    """
    column = getattr(versioning_manager.transaction_cls, "user_id", None)
    if column is None:
        raise ConfigError(NO_USER_COLUMN)
    try:
        return _convert(column, text.strip())
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(BAD_USER.format(text=text)) from None


def parse_when(text: str) -> datetime | int:
    """A transaction id (digits) or an ISO 8601 time.

    Raises:
        ConfigError: Neither.
    """
    stripped = text.strip()
    if stripped.isdigit():
        tx = int(stripped)
        if not 1 <= tx <= INT64_MAX:
            raise ConfigError(BAD_TX.format(text=text, limit=INT64_MAX))
        return tx
    try:
        when = datetime.fromisoformat(stripped)
    except ValueError:
        raise ConfigError(BAD_WHEN.format(text=text)) from None
    try:
        if when.tzinfo is not None:
            when.astimezone(UTC)  # what history.at does with an aware time
    except (OverflowError, ValueError):
        raise ConfigError(OUT_OF_RANGE_WHEN.format(text=text)) from None
    return when


def show(value: Any) -> str:
    """A value as tables show it: strings quoted, times to the second."""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, str):
        return repr(value)
    return str(value)


def _int_range(column: Any) -> tuple[int, int] | None:
    """The values an integer column's type holds on every database, else ``None``."""
    kind = column.type
    if not isinstance(kind, sa.Integer):
        return None
    bits = (
        64 if isinstance(kind, sa.BigInteger) else 16 if isinstance(kind, sa.SmallInteger) else 32
    )
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def _convert(column: Any, text: str) -> Any:
    """``text`` as the column's Python type.

    Raises:
        ValueError: ``text`` is not of that type.
        OverflowError: An integer beyond what the column's type holds.
    """
    value = _python_type(column)(text)
    bounds = _int_range(column)
    if bounds is not None and not bounds[0] <= value <= bounds[1]:
        raise OverflowError(text)
    return value


def _python_type(column: Any) -> type[Any]:
    try:
        found: type[Any] = column.type.python_type
    except NotImplementedError:
        return str
    return found
