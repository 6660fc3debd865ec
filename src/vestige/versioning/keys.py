"""Matching sets of primary keys in one statement: :class:`KeyMatch`, and key batches.

Part of the set-based unit of work (:mod:`vestige.versioning.unit_of_work`); bulk
statements (:mod:`vestige.versioning.bulk`) use it too.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from operator import attrgetter
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

__all__ = ["KeyMatch", "key_batches", "key_chunks", "key_getter", "key_reader", "match_keys"]

# SQLite before 3.32 accepts at most 999 bind parameters per statement.
_SQLITE_MAX_PARAMS = 32766 if sqlite3.sqlite_version_info >= (3, 32) else 999
_MAX_PARAMS = 30000


def key_batches(
    keys: Iterable[tuple[Any, ...]], match: KeyMatch, dialect: str
) -> Iterator[Sequence[tuple[Any, ...]]]:
    """The keys in as few batches as ``match`` takes: one, or chunks of an ``IN`` list."""
    if not match.one_parameter:
        yield from key_chunks(keys, len(match.columns), dialect)
        return
    batch = keys if isinstance(keys, Sequence) else list(keys)
    if batch:
        yield batch


def key_chunks(
    keys: Iterable[tuple[Any, ...]], width: int, dialect: str
) -> Iterator[list[tuple[Any, ...]]]:
    """Primary keys in sorted order, in chunks that fit one statement's bind parameters."""
    limit = _SQLITE_MAX_PARAMS if dialect == "sqlite" else _MAX_PARAMS
    size = max(1, (limit - 8) // max(width, 1))
    try:
        ordered = sorted(keys)
    except TypeError:  # a NULL key column next to values: NULLs last
        ordered = sorted(keys, key=_sort_key)
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


class KeyMatch:
    """``(columns) IN (keys)`` as one clause to build once and execute with any keys.

    On PostgreSQL the keys go as an array per column (``= ANY(%(keys)s::INTEGER[])``),
    on SQLite as one JSON text read by ``json_each``: the statement stays the same
    whatever the number of keys, so it is compiled once and cached, instead of
    expanding one bind parameter per key. Other dialects, and key columns whose values
    are not plain integers, strings or UUIDs, get an expanding ``IN`` list
    (:attr:`one_parameter` is false: callers chunk the keys with :func:`key_chunks`).

    The keys are bound at execution by :meth:`params`, under names starting with
    ``name``, unless ``keys`` are given here: then they are bound into the clause.

    On SQLite, :attr:`keys_table` and :attr:`on` offer the same match as a join:
    ``json_each`` drives the statement and each key is looked up in the table's index,
    where ``IN`` first copies the keys into a temporary b-tree.
    """

    __slots__ = (
        "_json",
        "_processors",
        "clause",
        "columns",
        "keys_table",
        "name",
        "on",
        "one_parameter",
    )

    def __init__(
        self,
        columns: Sequence[sa.ColumnElement[Any]],
        dialect: str,
        name: str = "vestige_keys",
        keys: Sequence[tuple[Any, ...]] | None = None,
    ) -> None:
        self.columns, self.name = list(columns), name
        self.clause: sa.ColumnElement[bool]
        self.keys_table: sa.FromClause | None = None
        self.on: sa.ColumnElement[bool] | None = None
        self.one_parameter = dialect in _ONE_PARAMETER_DIALECTS and all(
            _plain_key_type(column) for column in columns
        )
        self._json = self.one_parameter and dialect == "sqlite"
        self._processors: list[Any] = []
        if self._json:
            # Values as the column's type stores them (a UUID as its hex text, for instance).
            self._processors = [
                column.type.dialect_impl(_SQLITE_DIALECT).bind_processor(_SQLITE_DIALECT)
                for column in columns
            ]
        values = self.params(keys) if keys is not None else {}

        def bind(key: str, type_: Any = None, expanding: bool = False) -> Any:
            if keys is None:
                return sa.bindparam(key, type_=type_, expanding=expanding)
            return sa.bindparam(key, values[key], type_=type_, expanding=expanding, unique=True)

        if not self.one_parameter:
            if len(columns) == 1:
                self.clause = columns[0].in_(bind(name, columns[0].type, expanding=True))
            else:
                self.clause = sa.tuple_(*columns).in_(bind(name, expanding=True))
        elif dialect == "postgresql":
            # Rendered as %(param)s::INTEGER[] and so on: typed, whatever the element type.
            arrays = [
                bind(f"{name}_{i}", postgresql.ARRAY(column.type))
                for i, column in enumerate(columns)
            ]
            if len(columns) == 1:
                self.clause = columns[0] == sa.func.any(arrays[0])
            else:
                # Set-returning functions in one select list run in lockstep: one row per key.
                unnested = sa.select(*(sa.func.unnest(array) for array in arrays))
                self.clause = sa.tuple_(*columns).in_(unnested)
        else:
            each = sa.func.json_each(bind(name, sa.Text)).table_valued("value")
            if len(columns) == 1:
                picked: list[sa.ColumnElement[Any]] = [each.c.value]
                self.clause = columns[0].in_(sa.select(each.c.value))
            else:
                picked = [
                    sa.func.json_extract(each.c.value, f"$[{i}]") for i in range(len(columns))
                ]
                self.clause = sa.tuple_(*columns).in_(sa.select(*picked))
            self.keys_table = each
            self.on = sa.and_(*(c == v for c, v in zip(columns, picked, strict=True)))

    def params(
        self, keys: Sequence[tuple[Any, ...]], encoded: list[tuple[list[Any], str]] | None = None
    ) -> dict[str, Any]:
        """The execution parameters that bind ``keys`` to :attr:`clause`.

        ``encoded`` keeps the JSON texts made so far (SQLite): a flush copies and closes
        the same keys, and encodes them once.
        """
        if not self.one_parameter:
            if len(self.columns) == 1:
                return {self.name: [key[0] for key in keys]}
            return {self.name: list(keys)}
        if not self._json:
            return {f"{self.name}_{i}": [key[i] for key in keys] for i in range(len(self.columns))}
        if any(self._processors):
            keys = [
                tuple(
                    value if process is None else process(value)
                    for value, process in zip(key, self._processors, strict=True)
                )
                for key in keys
            ]
        # In index order: SQLite then reads each key's rows next to the previous key's
        # (joined through keys_table, it visits them in the order given).
        values: list[Any] = [key[0] for key in keys] if len(self.columns) == 1 else list(keys)
        with contextlib.suppress(TypeError):  # a NULL among values: any order will do
            values.sort()
        if encoded is None:
            return {self.name: json.dumps(values)}
        text = next((text for seen, text in encoded if seen == values), None)
        if text is None:
            text = json.dumps(values)
            encoded.append((values, text))
        return {self.name: text}


def match_keys(
    columns: Sequence[sa.ColumnElement[Any]], keys: Sequence[tuple[Any, ...]], dialect: str
) -> Any:
    """``(columns) IN (keys)`` with these keys bound in; see :class:`KeyMatch`."""
    return KeyMatch(columns, dialect, keys=keys).clause


# json_each is built into SQLite from 3.38 (before, only when compiled with JSON1).
_ONE_PARAMETER_DIALECTS = frozenset(
    {"postgresql", "sqlite"} if sqlite3.sqlite_version_info >= (3, 38) else {"postgresql"}
)
_PLAIN_KEY_TYPES = (int, str, uuid.UUID)


def _plain_key_type(column: sa.ColumnElement[Any]) -> bool:
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        return False
    return isinstance(python_type, type) and issubclass(python_type, _PLAIN_KEY_TYPES)


_SQLITE_DIALECT = sqlite.dialect()


def key_getter(attributes: Sequence[str]) -> Callable[[Any], tuple[Any, ...]]:
    """A function reading these attributes of an object as a tuple."""
    if len(attributes) == 1:
        (only,) = attributes
        return lambda target: (getattr(target, only),)
    return cast("Callable[[Any], tuple[Any, ...]]", attrgetter(*attributes))


def key_reader(
    attributes: Sequence[str], key_of: Callable[[Any], tuple[Any, ...]]
) -> Callable[[Any, dict[str, Any]], tuple[Any, ...]]:
    """``key(target, values)``: the attributes as a tuple, read from ``values`` (the
    object's ``__dict__``) when it holds them all, else through ``key_of``."""
    if len(attributes) == 1:
        (only,) = attributes

        def key(target: Any, values: dict[str, Any]) -> tuple[Any, ...]:
            try:
                return (values[only],)
            except KeyError:  # expired: loaded through the attribute
                return key_of(target)

        return key

    def keys(target: Any, values: dict[str, Any]) -> tuple[Any, ...]:
        try:
            return tuple(map(values.__getitem__, attributes))
        except KeyError:
            return key_of(target)

    return keys


def _sort_key(key: tuple[Any, ...]) -> tuple[tuple[bool, Any], ...]:
    return tuple((value is None, value) for value in key)
