"""Looking into the learner's database without changing it.

The URL is the exercises' own: ``DATABASE_URL``, else ``exercise/vestige.db``. A SQLite
file that does not exist is an empty database here: connecting would create it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from vestige.config import render_url
from vestige.errors import first_line

SQLITE_FILE = "vestige.db"


def workshop_url(workspace: Path, environ: Mapping[str, str] | None = None) -> str:
    """The database URL the exercise's scripts use (see ``exercise/db.py``)."""
    env = os.environ if environ is None else environ
    return env.get("DATABASE_URL") or f"sqlite:///{workspace / SQLITE_FILE}"


class Database:
    """Read-only questions about one database: its tables, columns and rows."""

    def __init__(self, url: str) -> None:
        self.url = sa.make_url(url)
        self.safe_url = render_url(self.url)
        database = self.url.database or ""
        self._missing = self.url.get_backend_name() == "sqlite" and (
            database not in ("", ":memory:") and not Path(database).exists()
        )
        self.engine = sa.create_engine(self.url, poolclass=sa.pool.NullPool)
        self._inspector: sa.Inspector | None = None

    def close(self) -> None:
        self.engine.dispose()

    def probe(self) -> str | None:
        """``None`` when the database answers, else the reason, on one line."""
        if self._missing:
            return None
        try:
            with self.engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
        except sa.exc.DBAPIError as exc:
            return first_line(exc)
        return None

    @property
    def inspector(self) -> sa.Inspector:
        if self._inspector is None:
            self._inspector = sa.inspect(self.engine)
        return self._inspector

    def tables(self) -> set[str]:
        """The names of the tables in the default schema."""
        return set() if self._missing else set(self.inspector.get_table_names())

    def columns(self, table: str) -> set[str]:
        return {column["name"] for column in self.inspector.get_columns(table)}

    def referred_tables(self, table: str) -> dict[str, str]:
        """Referred table -> the local column pointing at it, per foreign key."""
        return {
            key["referred_table"]: key["constrained_columns"][0]
            for key in self.inspector.get_foreign_keys(table)
        }

    def count(self, table: str, where: sa.ColumnElement[bool] | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(sa.table(table))
        if where is not None:
            query = query.where(where)
        with self.engine.connect() as connection:
            return int(connection.scalar(query) or 0)

    def rows(self, table: str, order_by: Sequence[str]) -> list[dict[str, Any]]:
        """Every row of ``table`` as a dict, in ``order_by`` order."""
        reflected = sa.Table(table, sa.MetaData(), autoload_with=self.engine)
        query = sa.select(reflected).order_by(*(reflected.c[name] for name in order_by))
        with self.engine.connect() as connection:
            return [dict(row) for row in connection.execute(query).mappings()]


@contextmanager
def open_database(url: str) -> Iterator[Database]:
    """A :class:`Database` on ``url``, disposed of at the end."""
    database = Database(url)
    try:
        yield database
    finally:
        database.close()
