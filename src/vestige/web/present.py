"""What the pages show and link: values, times, keys in URLs, and page cursors.

Keys travel in query strings, one parameter per key column (``key.id=7``,
``key.vendor=acme&key.code=3``), so that any key, a UUID or a string holding commas
included, makes a link that can be bookmarked and shared. Text from the address bar is
converted to the key columns' types before it reaches a query.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlencode

from vestige.errors import ConfigError
from vestige.history.queries import key_columns

__all__ = [
    "BAD_CURSOR",
    "BAD_KEY_PARAM",
    "BAD_TRANSACTION",
    "KEY_PREFIX",
    "convert",
    "decode_cursor",
    "encode_cursor",
    "key_from_query",
    "key_query",
    "parse_transaction_id",
    "show_value",
    "utc_iso",
    "with_query",
]

KEY_PREFIX = "key."
BAD_KEY_PARAM = "bad key for {model}: give {expected} in the address (e.g. {example})"
BAD_TRANSACTION = "bad transaction id {text!r}: give a whole number, e.g. 42"
BAD_CURSOR = "bad page position {text!r}: follow the Newer and Older links instead"


def key_query(model: type[Any], key: Sequence[Any]) -> dict[str, str]:
    """A record's key as query parameters, ``{"key.id": "7"}``."""
    names = _KEY_PARAMETERS.get(model)
    if names is None:
        names = _KEY_PARAMETERS[model] = tuple(
            f"{KEY_PREFIX}{name}" for name, _ in key_columns(model)
        )
    return {name: _text(value) for name, value in zip(names, key, strict=True)}


_KEY_PARAMETERS: dict[type[Any], tuple[str, ...]] = {}


def key_from_query(model: type[Any], query: Mapping[str, str]) -> tuple[Any, ...]:
    """The record key in a query string, as the key columns' Python types.

    Raises:
        ConfigError: A key part is missing or is not of its column's type.
    """
    columns = key_columns(model)
    expected = ", ".join(f"{KEY_PREFIX}{name}" for name, _ in columns)
    example = "&".join(f"{KEY_PREFIX}{name}=1" for name, _ in columns)
    bad = ConfigError(
        BAD_KEY_PARAM.format(model=model.__name__, expected=expected, example=example)
    )
    values = []
    for name, column in columns:
        text = query.get(f"{KEY_PREFIX}{name}")
        if text is None:
            raise bad
        try:
            values.append(convert(column, text))
        except (TypeError, ValueError, OverflowError):
            raise bad from None
    return tuple(values)


def convert(column: Any, text: str) -> Any:
    """``text`` as a value of ``column``'s Python type.

    Raises:
        ValueError: It is not one.
    """
    try:
        kind: type[Any] = column.type.python_type
    except NotImplementedError:
        return text
    if kind is datetime:
        return datetime.fromisoformat(text)
    if kind is date:
        return date.fromisoformat(text)
    if kind is bool:
        if text.lower() not in ("true", "false", "1", "0"):
            raise ValueError(text)
        return text.lower() in ("true", "1")
    value = kind(text)
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        raise OverflowError(text)
    return value


def parse_transaction_id(text: str) -> int:
    """A transaction id from the address or a form.

    Raises:
        ConfigError: It is not a positive whole number that fits a BIGINT.
    """
    stripped = text.strip()
    if not stripped.isdigit() or not 0 < int(stripped) < 2**63:
        raise ConfigError(BAD_TRANSACTION.format(text=text[:80]))
    return int(stripped)


def encode_cursor(cursor: Sequence[Any] | None) -> str | None:
    """A page position as one query parameter: a JSON list of its parts, as text."""
    if cursor is None:
        return None
    return json.dumps([cursor[0], *[_text(part) for part in cursor[1:]]], ensure_ascii=False)


def decode_cursor(model: type[Any] | None, text: str | None) -> tuple[Any, ...] | None:
    """A position written by :func:`encode_cursor`, its key parts converted for ``model``.

    Raises:
        ConfigError: It is not one.
    """
    if not text:
        return None
    bad = ConfigError(BAD_CURSOR.format(text=text[:80]))
    try:
        parts = json.loads(text)
    except ValueError:
        raise bad from None
    if not isinstance(parts, list) or not parts or not isinstance(parts[0], int):
        raise bad
    if model is None:
        if len(parts) != 1:
            raise bad
        return (parts[0],)
    columns = key_columns(model)
    if len(parts) != len(columns) + 1:
        raise bad
    try:
        key = [
            convert(column, str(part)) for (_, column), part in zip(columns, parts[1:], strict=True)
        ]
    except (TypeError, ValueError, OverflowError):
        raise bad from None
    return (parts[0], *key)


def utc_iso(moment: datetime) -> str:
    """A stored time (naive UTC, as Continuum keeps it) in ISO 8601 with its zone."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def show_value(value: Any) -> str:
    """A column value as text for a table cell."""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def with_query(path: str, **params: Any) -> str:
    """``path`` with the query parameters that are not ``None``."""
    items: list[tuple[str, str]] = []
    for name, value in params.items():
        if value is None:
            continue
        if isinstance(value, Mapping):
            items.extend((str(k), str(v)) for k, v in value.items())
        elif isinstance(value, list | tuple):
            items.extend((name, str(v)) for v in value)
        else:
            items.append((name, str(value)))
    return f"{path}?{urlencode(items)}" if items else path


def _text(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)
