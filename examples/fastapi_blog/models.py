"""The blog's models: posts and their comments, both versioned."""

from __future__ import annotations

from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from vestige.versioning import configure_mappers, make_versioned

# 1. Before the first model. The blog has no user table: the user each request
#    records goes into transaction.context, beside the request id.
make_versioned(user_cls=None)


class Base(DeclarativeBase):
    pass


class Post(Base):
    __tablename__ = "post"
    __versioned__: ClassVar[dict[str, Any]] = {}  # 2. keep this model's history

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    body: Mapped[str] = mapped_column(sa.Text, default="")
    comments: Mapped[list[Comment]] = relationship(
        back_populates="post", cascade="all, delete-orphan"
    )


class Comment(Base):
    __tablename__ = "comment"
    __versioned__: ClassVar[dict[str, Any]] = {}

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(sa.ForeignKey("post.id"))
    body: Mapped[str] = mapped_column(sa.Text)
    post: Mapped[Post] = relationship(back_populates="comments")


configure_mappers()  # 3. once every model is declared: builds the *_version tables
