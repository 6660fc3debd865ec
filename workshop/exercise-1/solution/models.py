"""The package index: packages, their releases, and the maintainers who keep them."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

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


package_maintainer = sa.Table(
    "package_maintainer",
    Base.metadata,
    sa.Column("package_id", sa.ForeignKey("package.id"), primary_key=True),
    sa.Column("maintainer_id", sa.ForeignKey("maintainer.id"), primary_key=True),
)


class Package(Base):
    __tablename__ = "package"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    summary: Mapped[str | None] = mapped_column(sa.String(500))

    releases: Mapped[list[Release]] = relationship(
        back_populates="package", cascade="all, delete-orphan", order_by="Release.id"
    )
    maintainers: Mapped[list[Maintainer]] = relationship(
        secondary=package_maintainer, back_populates="packages"
    )

    def __repr__(self) -> str:
        return f"<Package {self.name}>"


class Release(Base):
    __tablename__ = "release"

    id: Mapped[int] = mapped_column(primary_key=True)
    package_id: Mapped[int] = mapped_column(sa.ForeignKey("package.id"), index=True)
    version: Mapped[str] = mapped_column(sa.String(64))
    yanked: Mapped[bool] = mapped_column(default=False)

    package: Mapped[Package] = relationship(back_populates="releases")

    def __repr__(self) -> str:
        return f"<Release {self.version}>"


class Maintainer(Base):
    __tablename__ = "maintainer"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(80), unique=True)
    email: Mapped[str] = mapped_column(sa.String(200))

    packages: Mapped[list[Package]] = relationship(
        secondary=package_maintainer, back_populates="maintainers"
    )

    def __repr__(self) -> str:
        return f"<Maintainer {self.username}>"
