"""Small applications of their own for ``vestige init`` to set up.

Each is a package ``blog`` whose ``models`` module declares versioned models of the
shapes that trip migrations up: an integer key, a UUID key, a composite key, a
many-to-many association and a column named ``order``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BLOG_MODELS = '''\
"""A blog: posts, tags, per-post translations and comments keyed by UUID."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from vestige.versioning import configure_mappers, make_versioned

make_versioned(user_cls=None)


class Base(DeclarativeBase):
    metadata = sa.MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


post_tag = sa.Table(
    "post_tag",
    Base.metadata,
    sa.Column("post_id", sa.ForeignKey("post.id"), primary_key=True),
    sa.Column("tag_id", sa.ForeignKey("tag.id"), primary_key=True),
)


class Tag(Base):
    __tablename__ = "tag"
    __versioned__: ClassVar[dict[str, Any]] = {}
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(40), unique=True)


class Post(Base):
    __tablename__ = "post"
    __versioned__: ClassVar[dict[str, Any]] = {}
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    order: Mapped[int] = mapped_column(default=0)
    tags: Mapped[list[Tag]] = relationship(secondary=post_tag)


class Comment(Base):
    __tablename__ = "comment"
    __versioned__: ClassVar[dict[str, Any]] = {}
    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    post_id: Mapped[int] = mapped_column(sa.ForeignKey("post.id"))
    body: Mapped[str] = mapped_column(sa.Text)


class Translation(Base):
    __tablename__ = "translation"
    __versioned__: ClassVar[dict[str, Any]] = {}
    post_id: Mapped[int] = mapped_column(sa.ForeignKey("post.id"), primary_key=True)
    language: Mapped[str] = mapped_column(sa.String(8), primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(200))


configure_mappers()
'''

#: The version tables the blog's models need (``transaction`` included).
BLOG_VERSION_TABLES = frozenset(
    {
        "transaction",
        "tag_version",
        "post_version",
        "post_tag_version",
        "comment_version",
        "translation_version",
    }
)


def blog_project(project: Path, *, pyproject: str | None = "[project]\nname = 'blog'\n") -> Path:
    """A project directory holding the ``blog`` package (and a pyproject.toml, if given)."""
    package = project / "blog"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "models.py").write_text(BLOG_MODELS, encoding="utf-8")
    if pyproject is not None:
        (project / "pyproject.toml").write_text(pyproject, encoding="utf-8")
    return project


def alembic_init(project: Path, template: str) -> None:
    """``alembic init -t TEMPLATE migrations`` in ``project``, as a user runs it."""
    subprocess.run(
        [sys.executable, "-m", "alembic", "init", "-t", template, "migrations"],
        cwd=project,
        check=True,
        capture_output=True,
    )


# Runs commands the way their console scripts do, one after the other in one Python
# process (one start-up instead of one per command): ``python -c STEPS cwd steps.json``.
# Each step is [command, [args...], DATABASE_URL or null]; it prints one JSON list of
# [exit code, stdout, stderr] per step.
STEPS = """
import contextlib, io, json, os, sys

sys.path.insert(0, os.getcwd())
results = []
for command, args, url in json.loads(open(sys.argv[1]).read()):
    os.environ.pop("DATABASE_URL", None)
    if url is not None:
        os.environ["DATABASE_URL"] = url
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            if command == "vestige":
                from vestige.cli import app

                code = app.main(args, prog_name="vestige", standalone_mode=False) or 0
            else:
                from alembic.config import main

                main(argv=args, prog="alembic")
                code = 0
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else 1
    results.append([code, out.getvalue(), err.getvalue()])
    if code != 0:
        break
print(json.dumps(results))
"""
