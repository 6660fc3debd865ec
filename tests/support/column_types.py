"""Column types of an application's own, shared by the zoo and the archive's tests."""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["Lowered"]


class Lowered(sa.TypeDecorator[str]):
    """Stored lower case, read upper case: which of the two a copy holds shows."""

    impl = sa.String(40)
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: sa.Dialect) -> str | None:
        return value.lower() if value is not None else None

    def process_result_value(self, value: str | None, dialect: sa.Dialect) -> str | None:
        return value.upper() if value is not None else None
