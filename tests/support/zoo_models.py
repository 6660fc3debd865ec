"""A model zoo: the shapes of applications Vestige did not grow up with.

UUID keys, a composite key with a string part, joined-table inheritance two levels
deep, single-table inheritance, many-to-many through an association table with a
primary key, SQL keywords as column names, and JSON / Numeric / timezone-aware / Python
enum / TypeDecorator columns.

It is a models module of its own (its own ``make_versioned``), so it is imported only in
a process of its own (:mod:`tests.support.zoo_scenario`), never beside the reference
models: Continuum's manager is global to a process.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from tests.support.column_types import Lowered
from vestige.versioning import configure_mappers, make_versioned

make_versioned(user_cls=None)


class Base(DeclarativeBase):
    metadata = sa.MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class Token(Base):
    """A UUID primary key."""

    __tablename__ = "token"
    __versioned__: ClassVar[dict[str, Any]] = {}

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    label: Mapped[str] = mapped_column(sa.String(50))


class Sku(Base):
    """A composite key with a string part."""

    __tablename__ = "sku"
    __versioned__: ClassVar[dict[str, Any]] = {}

    vendor: Mapped[str] = mapped_column(sa.String(20), primary_key=True)
    code: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    price: Mapped[Decimal] = mapped_column(sa.Numeric(10, 2))


class Document(Base):
    """Joined-table inheritance, two levels below: Invoice, then Credit."""

    __tablename__ = "document"
    __versioned__: ClassVar[dict[str, Any]] = {}

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(sa.String(20))
    title: Mapped[str] = mapped_column(sa.String(50))
    __mapper_args__: ClassVar[dict[str, Any]] = {
        "polymorphic_on": "kind",
        "polymorphic_identity": "document",
    }


class Invoice(Document):
    __tablename__ = "invoice"

    id: Mapped[int] = mapped_column(sa.ForeignKey("document.id"), primary_key=True)
    amount: Mapped[int] = mapped_column(default=0)
    __mapper_args__: ClassVar[dict[str, Any]] = {"polymorphic_identity": "invoice"}


class Credit(Invoice):
    __tablename__ = "credit"

    id: Mapped[int] = mapped_column(sa.ForeignKey("invoice.id"), primary_key=True)
    reason: Mapped[str] = mapped_column(sa.String(50), default="")
    __mapper_args__: ClassVar[dict[str, Any]] = {"polymorphic_identity": "credit"}


class Party(Base):
    """Single-table inheritance: Person and Company share ``party``."""

    __tablename__ = "party"
    __versioned__: ClassVar[dict[str, Any]] = {}

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    type: Mapped[str] = mapped_column(sa.String(20))
    name: Mapped[str] = mapped_column(sa.String(50))
    __mapper_args__: ClassVar[dict[str, Any]] = {
        "polymorphic_on": "type",
        "polymorphic_identity": "party",
    }


class Person(Party):
    __mapper_args__: ClassVar[dict[str, Any]] = {"polymorphic_identity": "person"}


class Company(Party):
    __mapper_args__: ClassVar[dict[str, Any]] = {"polymorphic_identity": "company"}


article_tag = sa.Table(
    "article_tag",
    Base.metadata,
    sa.Column("article_id", sa.ForeignKey("article.id"), primary_key=True),
    sa.Column("tag_id", sa.ForeignKey("tag.id"), primary_key=True),
)


class Tag(Base):
    __tablename__ = "tag"
    __versioned__: ClassVar[dict[str, Any]] = {}

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(sa.String(50))


class Article(Base):
    """Many-to-many through ``article_tag``, whose primary key is both columns."""

    __tablename__ = "article"
    __versioned__: ClassVar[dict[str, Any]] = {}

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    headline: Mapped[str] = mapped_column(sa.String(50))
    tags: Mapped[list[Tag]] = relationship(secondary=article_tag)


class Clause(Base):
    """Columns named after SQL keywords."""

    __tablename__ = "clause"
    __versioned__: ClassVar[dict[str, Any]] = {}

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    select: Mapped[str] = mapped_column("select", sa.String(20))
    from_: Mapped[str] = mapped_column("from", sa.String(20))
    order: Mapped[int] = mapped_column("order", default=0)
    user: Mapped[str | None] = mapped_column("user", sa.String(20))


class Level(enum.Enum):
    """Stored by name (``LOW``), read back as the member."""

    LOW = "low"
    HIGH = "high"


class Event(Base):
    """JSON, Numeric, a timezone-aware time, an Enum of a Python enum class and a
    TypeDecorator."""

    __tablename__ = "event"
    __versioned__: ClassVar[dict[str, Any]] = {}

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    payload: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    amount: Mapped[Decimal] = mapped_column(sa.Numeric(12, 4))
    at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    level: Mapped[Level] = mapped_column(sa.Enum(Level, name="event_level"))
    code: Mapped[str] = mapped_column(Lowered())


configure_mappers()
