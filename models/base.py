"""Declarative base of the reference models, with versioning turned on first.

``make_versioned`` must run before any versioned model is declared, so it runs here,
where the base is defined, and every model module imports the base.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy_continuum.plugins import TransactionChangesPlugin

from vestige.versioning import make_versioned

make_versioned(user_cls="Maintainer", plugins=[TransactionChangesPlugin()])

# Every constraint gets a name: SQLite batch migrations recreate tables and can only
# drop or alter constraints they can name. Version tables share the convention.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utc_now() -> datetime:
    """The current UTC time, naive, like Continuum's ``transaction.issued_at``."""
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
