"""``CREATE TEMPORARY TABLE name AS SELECT ...``, the same on SQLAlchemy 2.0 and 2.1.

SQLAlchemy 2.1 has ``Select.into()`` for this; 2.0 has nothing, so the pruner uses this
small construct of its own (SQLAlchemy's documented ``@compiles`` recipe), which renders
the select with its bound parameters on either version.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, Executable

__all__ = ["CreateTemporaryTableAs"]


class CreateTemporaryTableAs(Executable, ClauseElement):
    """``CREATE TEMPORARY TABLE name AS query``; :attr:`table` describes the result.

    Attributes:
        name: The table's name (an identifier of Vestige's own, never user input).
        query: The rows to store.
        table: A :class:`~sqlalchemy.Table` of the new table's columns, to query it.
    """

    inherit_cache = False  # a DDL statement run once per table: not worth caching

    def __init__(self, name: str, query: sa.Select[Any]) -> None:
        self.name = name
        self.query = query
        self.table = sa.Table(
            name,
            sa.MetaData(),
            *(sa.Column(column.name, column.type) for column in query.selected_columns),
            prefixes=["TEMPORARY"],
        )


@compiles(CreateTemporaryTableAs)
def _create_temporary_table_as(
    element: CreateTemporaryTableAs, compiler: SQLCompiler, **kw: Any
) -> str:
    name = compiler.preparer.quote(element.name)
    return f"CREATE TEMPORARY TABLE {name} AS {compiler.process(element.query, **kw)}"
