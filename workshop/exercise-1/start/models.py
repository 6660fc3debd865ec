"""The package index: packages, their releases, and the maintainers who keep them.

Package is written for you. Your part (README.md, step 1), in this order:

- package_maintainer: the association table between package and maintainer, above
  Package (which names it: Python runs this file from top to bottom).
- On Package: ``releases`` (one-to-many) and ``maintainers`` (many-to-many).
- Release: id, package_id (a foreign key to package.id), version (a string), yanked
  (a bool, False by default), and ``package``, the relationship back to its Package.
- Maintainer: id, username (unique), email, and ``packages``.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Every constraint gets a name, so that migrations can later drop or alter it
# (SQLite recreates a table to alter it, and can only keep constraints it can name).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


# package_maintainer = sa.Table(...) goes here, above Package, which will use it.


class Package(Base):
    __tablename__ = "package"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    summary: Mapped[str | None] = mapped_column(sa.String(500))
