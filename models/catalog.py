"""The reference domain: a small package index.

Licences, maintainers, packages (each under one licence, kept by several maintainers)
and the releases of each package. Every model is versioned.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, utc_now

package_maintainer = sa.Table(
    "package_maintainer",
    Base.metadata,
    sa.Column("package_id", sa.ForeignKey("package.id", ondelete="CASCADE"), primary_key=True),
    sa.Column(
        "maintainer_id", sa.ForeignKey("maintainer.id", ondelete="CASCADE"), primary_key=True
    ),
)


class License(Base):
    __tablename__ = "license"
    __versioned__: ClassVar[dict[str, Any]] = {}

    id: Mapped[int] = mapped_column(primary_key=True)
    spdx_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    osi_approved: Mapped[bool] = mapped_column(default=False)

    def __repr__(self) -> str:
        return f"<License {self.spdx_id}>"


class Maintainer(Base):
    __tablename__ = "maintainer"
    __versioned__: ClassVar[dict[str, Any]] = {}

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(80), unique=True)
    email: Mapped[str] = mapped_column(sa.String(200))
    full_name: Mapped[str | None] = mapped_column(sa.String(200))

    packages: Mapped[list[Package]] = relationship(
        secondary=package_maintainer, back_populates="maintainers"
    )

    def __repr__(self) -> str:
        return f"<Maintainer {self.username}>"


class Package(Base):
    __tablename__ = "package"
    __versioned__: ClassVar[dict[str, Any]] = {}

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    summary: Mapped[str | None] = mapped_column(sa.String(500))
    homepage: Mapped[str | None] = mapped_column(sa.String(500))
    license_id: Mapped[int | None] = mapped_column(sa.ForeignKey("license.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)

    license: Mapped[License | None] = relationship()
    maintainers: Mapped[list[Maintainer]] = relationship(
        secondary=package_maintainer, back_populates="packages"
    )
    releases: Mapped[list[Release]] = relationship(
        back_populates="package", cascade="all, delete-orphan", order_by="Release.id"
    )

    def __repr__(self) -> str:
        return f"<Package {self.name}>"


class Release(Base):
    __tablename__ = "release"
    __versioned__: ClassVar[dict[str, Any]] = {}
    __table_args__ = (sa.UniqueConstraint("package_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    package_id: Mapped[int] = mapped_column(
        sa.ForeignKey("package.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[str] = mapped_column(sa.String(64))
    requires_python: Mapped[str | None] = mapped_column(sa.String(64))
    yanked: Mapped[bool] = mapped_column(default=False)
    released_at: Mapped[datetime] = mapped_column(default=utc_now)

    package: Mapped[Package] = relationship(back_populates="releases")

    def __repr__(self) -> str:
        return f"<Release {self.version}>"
