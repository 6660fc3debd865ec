"""Rows of a table as Parquet, with the column types kept, and read back.

Each SQLAlchemy column type maps to the Arrow type that keeps it: integers by width,
``Numeric(p, s)`` as ``decimal128(p, s)``, ``Uuid`` as Arrow's UUID extension (Parquet's
UUID logical type), ``JSON`` as Arrow's JSON extension (Parquet's JSON logical type),
timezone-aware times as UTC timestamps. A type without a lossless Arrow equal (a
``Numeric`` without precision, an array, a custom type) is stored as text, and the
field's metadata says so: ``vestige.type`` = ``decimal`` or ``json``.
"""

from __future__ import annotations

import hashlib
import io
import json
import uuid
import weakref
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.engine.default import DefaultDialect

#: A row as the database returned it: its values in the table's column order.
Row = Sequence[Any]

__all__ = [
    "arrow_field",
    "arrow_schema",
    "csv_readable",
    "decode_value",
    "from_csv",
    "read_back",
    "row_count",
    "sha256",
    "sorted_order",
    "to_arrow",
    "to_parquet",
]

_ENCODED = b"vestige.type"


def stored_type(kind: Any) -> Any:
    """The type a value is stored as: a ``TypeDecorator``'s underlying type."""
    while isinstance(kind, sa.TypeDecorator):
        kind = kind.impl_instance
    return kind


def _decorator(kind: Any, method: str) -> Any:
    """A ``TypeDecorator``'s own ``process_bind_param`` / ``process_result_value``, if it
    has one (``None`` otherwise)."""
    if isinstance(kind, sa.TypeDecorator) and getattr(type(kind), method) is not getattr(
        sa.TypeDecorator, method
    ):
        return getattr(kind, method)
    return None


def arrow_field(column: sa.Column[Any]) -> pa.Field:
    """The Arrow field that keeps ``column``'s type (a ``TypeDecorator``'s: the type it
    stores values as)."""
    kind = stored_type(column.type)
    metadata: dict[bytes, bytes] | None = None
    arrow: pa.DataType
    if isinstance(kind, sa.Boolean):
        arrow = pa.bool_()
    elif isinstance(kind, sa.SmallInteger):
        arrow = pa.int16()
    elif isinstance(kind, sa.BigInteger):
        arrow = pa.int64()
    elif isinstance(kind, sa.Integer):
        arrow = pa.int32()
    elif isinstance(kind, sa.Float):
        arrow = pa.float64()
    elif isinstance(kind, sa.Numeric):
        if kind.precision is not None and kind.precision <= 38:
            arrow = pa.decimal128(kind.precision, kind.scale or 0)
        else:
            arrow, metadata = pa.string(), {_ENCODED: b"decimal"}
    elif isinstance(kind, sa.DateTime):
        arrow = pa.timestamp("us", tz="UTC" if kind.timezone else None)
    elif isinstance(kind, sa.Date):
        arrow = pa.date32()
    elif isinstance(kind, sa.Time):
        arrow = pa.time64("us")
    elif isinstance(kind, sa.Interval):
        arrow = pa.duration("us")
    elif isinstance(kind, sa.Uuid):
        arrow = pa.uuid()
    elif isinstance(kind, sa.JSON):
        arrow = pa.json_()
    elif isinstance(kind, sa.LargeBinary):
        arrow = pa.binary()
    elif isinstance(kind, sa.String | sa.Enum):
        arrow = pa.string()
    else:
        arrow, metadata = pa.string(), {_ENCODED: b"json"}
    return pa.field(column.name, arrow, nullable=True, metadata=metadata)


#: Each table's schema, with the column names it was made from.
_SCHEMAS: weakref.WeakKeyDictionary[sa.Table, tuple[tuple[str, ...], pa.Schema]] = (
    weakref.WeakKeyDictionary()
)


def arrow_schema(table: sa.Table) -> pa.Schema:
    """The Arrow schema of ``table``'s rows, in column order (kept per table, made anew
    when its columns change: an archiving run asks for it with every batch)."""
    names = tuple(column.name for column in table.c)
    found = _SCHEMAS.get(table)
    if found is None or found[0] != names:
        found = _SCHEMAS[table] = (names, pa.schema([arrow_field(c) for c in table.c]))
    return found[1]


#: The dialect Enum and TypeDecorator values are converted with, to and from the archive.
_ANY_DIALECT = DefaultDialect()


def _enum_class(kind: Any) -> bool:
    return isinstance(kind, sa.Enum) and kind.enum_class is not None


def _converter(field: pa.Field, column: sa.Column[Any]) -> Any:
    """How a value of ``field`` (of ``column``) goes to Arrow: ``None`` when as it is.

    An ``Enum`` of a Python enum class is stored as the database stores it (the member's
    name, or its value with ``values_callable``), and read back as the member. A
    ``TypeDecorator``'s value is stored as its ``process_bind_param`` gives it to the
    database, and read back through its ``process_result_value``.
    """
    inner = _stored_converter(field, column)
    to_database = _decorator(column.type, "process_bind_param")
    if to_database is None:
        return inner

    def convert(value: Any) -> Any:
        stored = to_database(value, _ANY_DIALECT)
        return stored if stored is None or inner is None else inner(stored)

    return convert


def _stored_converter(field: pa.Field, column: sa.Column[Any]) -> Any:
    """How a value of the stored type of ``field`` goes to Arrow (see :func:`_converter`).

    Times need none: Arrow stores an aware time in a naive field as its UTC time, and a
    naive time in an aware field as UTC (SQLite gives aware columns back naive: UTC).
    """
    kind = stored_type(column.type)
    if _enum_class(kind):
        stored: Any = kind.bind_processor(_ANY_DIALECT)
        return stored if stored is not None else str
    encoded = (field.metadata or {}).get(_ENCODED)
    if encoded == b"decimal":
        return str
    if encoded == b"json" or field.type == pa.json_():
        return lambda value: json.dumps(value, default=str, sort_keys=True)
    if field.type == pa.uuid():
        return lambda value: (
            (value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))).bytes
        )
    return None


def to_arrow(table: sa.Table, rows: Sequence[Row]) -> tuple[pa.Table, pa.Array]:
    """``rows`` of ``table`` as an Arrow table, and their months.

    Args:
        table: The table.
        rows: Each its values in column order, then a month number (``YYYYMM`` or ``None``).

    Returns:
        The table's columns, and the months (``int32``).
    """
    schema = arrow_schema(table)
    converters = [_converter(field, column) for field, column in zip(schema, table.c, strict=True)]
    if rows and not any(converters):
        # tuples straight to Arrow, in C: a struct array of the row's fields
        struct = pa.struct([*schema, pa.field("month", pa.int32())])
        try:
            columns = pa.array(rows, type=struct).flatten()
        except (pa.ArrowTypeError, pa.ArrowInvalid):
            pass  # not plain tuples (SQLAlchemy rows): column by column below
        else:
            return pa.Table.from_arrays(columns[:-1], schema=schema), columns[-1]
    by_column = list(zip(*rows, strict=True)) if rows else [()] * (len(schema) + 1)
    months = pa.array(by_column.pop(), type=pa.int32())
    columns = []
    for values, field, convert in zip(by_column, schema, converters, strict=True):
        if convert is not None:
            converted = [None if value is None else convert(value) for value in values]
            columns.append(pa.array(converted, type=field.type))
        else:
            columns.append(pa.array(values, type=field.type))
    return pa.Table.from_arrays(columns, schema=schema), months


#: Arrow types whose values PostgreSQL's CSV text gives exactly (DateStyle ISO, which
#: psycopg2 sets): what the driver would have returned, parsed in C.
_CSV_TYPES = (
    pa.types.is_boolean,
    pa.types.is_integer,
    pa.types.is_float64,
    pa.types.is_string,
    pa.types.is_timestamp,
    pa.types.is_date32,
    pa.types.is_decimal128,
)


def csv_readable(table: sa.Table) -> bool:
    """Whether every column of ``table`` reads from PostgreSQL's CSV output as it would
    from the driver: plain types that need no conversion on the way to Arrow, and JSON
    (the database's own JSON text is kept). Not: a ``TypeDecorator``, an enum class,
    UUID, binary, time of day, interval, array."""
    for field, column in zip(arrow_schema(table), table.c, strict=True):
        if isinstance(column.type, sa.TypeDecorator):
            return False
        if field.type == pa.json_():
            continue
        if _converter(field, column) is not None:
            return False
        if not any(check(field.type) for check in _CSV_TYPES):
            return False
    return True


def from_csv(table: sa.Table, data: bytes) -> tuple[pa.Table, pa.Array]:
    """Rows of ``table`` as PostgreSQL's ``COPY ... TO STDOUT (FORMAT csv)`` writes them
    (no header; the table's columns, then a month number), as :func:`to_arrow` gives them.

    Only for tables that are :func:`csv_readable`. NULL is an unquoted empty field, an
    empty string a quoted one; ``NA``, ``NaN`` and the like are values.

    Raises:
        pyarrow.ArrowInvalid: A value does not parse as its column's type (a time of
            ``infinity``, a year after 9999): read the rows another way.
    """
    schema = arrow_schema(table)
    if not data:
        return schema.empty_table(), pa.array([], type=pa.int32())
    names = [f"c{i}" for i in range(len(schema) + 1)]  # by place: "month" may be a column
    types = {
        name: field.type.storage_type if field.type == pa.json_() else field.type
        for name, field in zip(names, schema, strict=False)
    }
    parsed = pcsv.read_csv(
        io.BytesIO(data),
        read_options=pcsv.ReadOptions(column_names=names, use_threads=False),
        parse_options=pcsv.ParseOptions(newlines_in_values=True),
        convert_options=pcsv.ConvertOptions(
            column_types={**types, names[-1]: pa.int32()},
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
        ),
    )
    columns = [column.combine_chunks() for column in parsed.columns]
    values = [
        pa.ExtensionArray.from_storage(field.type, column)
        if isinstance(field.type, pa.BaseExtensionType)
        else column
        for field, column in zip(schema, columns, strict=False)
    ]
    return pa.Table.from_arrays(values, schema=schema), columns[-1]


def sorted_order(rows: pa.Table, months: pa.Array, order: Sequence[str]) -> pa.Array:
    """The row indices of ``rows`` in month order, then by ``order`` (the key, then the
    transaction: primary key columns, never NULL)."""
    keys = {"month": months}
    for name in order:
        column = rows.column(name).combine_chunks()
        # extension types (UUID, JSON) sort by their stored bytes or text
        keys[f"key.{name}"] = column.storage if isinstance(column, pa.ExtensionArray) else column
    return pc.sort_indices(pa.table(keys), sort_keys=[(name, "ascending") for name in keys])


def to_parquet(rows: pa.Table) -> bytes:
    """``rows`` as one Parquet file (zstd; dictionary encoding for text columns only:
    numbers and times compress as well without, written faster)."""
    text = [field.name for field in rows.schema if pa.types.is_string(field.type)]
    # Arrow's own buffers, not Python file objects: no Python callbacks from Arrow's
    # threads (which can abort the interpreter at exit while one is still running)
    sink = pa.BufferOutputStream()
    pq.write_table(rows, sink, compression="zstd", use_dictionary=text)
    return bytes(sink.getvalue().to_pybytes())


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_back(data: bytes) -> pa.Table:
    """Parse a Parquet file wholly (every page decoded), as a check that it reads."""
    return pq.read_table(pa.BufferReader(data), use_threads=False, pre_buffer=False)


def row_count(data: bytes) -> int:
    """The row count a Parquet file's footer records (the footer parsed, no page decoded)."""
    return int(pq.read_metadata(pa.BufferReader(data)).num_rows)


def decode_value(column: sa.Column[Any] | None, value: Any, *, naive_times: bool) -> Any:
    """A value read from the archive (by DuckDB) as the database would return it.

    Args:
        column: The column of the table as the models declare it now (``None``: unknown).
        value: The value DuckDB returned.
        naive_times: Give timezone-aware times back naive UTC (SQLite does).
    """
    if value is None or column is None:
        return value
    value = _decode_stored(stored_type(column.type), value, naive_times=naive_times)
    from_database = _decorator(column.type, "process_result_value")
    return value if from_database is None else from_database(value, _ANY_DIALECT)


def _decode_stored(kind: Any, value: Any, *, naive_times: bool) -> Any:
    if _enum_class(kind):
        member = kind.result_processor(_ANY_DIALECT, None)
        return member(value) if member is not None else value
    if isinstance(kind, sa.JSON) and isinstance(value, str):
        return json.loads(value)
    if isinstance(kind, sa.Numeric) and not isinstance(kind, sa.Float) and isinstance(value, str):
        return Decimal(value)
    if isinstance(value, datetime) and value.tzinfo is not None:
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if naive_times or not kind_timezone(kind) else value
    return value


def kind_timezone(kind: Any) -> bool:
    return bool(getattr(kind, "timezone", False))
