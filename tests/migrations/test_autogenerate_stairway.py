"""A scratch migration history whose models change, driven through autogenerate.

Each stage of the models runs in its own process, forked from one that imported the
libraries once (Continuum's global state cannot be reset in-process): autogenerate a
revision, upgrade, write rows, read their history, run ``vestige check``. SQLite runs the
Python-side (validity) versioning; PostgreSQL runs native versioning, where the triggers
write the versions.

Stages: 1 creates ``author``; 2 renames ``name`` to ``full_name`` (autogenerate points out
the rename; the revision is edited to ``rename_column`` as the note says); 3 drops ``bio``
(its history is kept); 4 adds ``book``; 5 renames it ``volume`` (``rename_table``). Then
down four revisions and back up: rows kept, versioning works, vestige.testing passes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.project import ROOT
from vestige.migrations.autogenerate import DROPPED_TABLE_NOTE, KEPT_NOTE, RENAME_NOTE
from vestige.migrations.check import MESSAGES

MODELS = """
import os

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from vestige.versioning import configure_mappers, make_versioned

STAGE = int(os.environ["SCRATCH_STAGE"])
NATIVE = os.environ["SCRATCH_NATIVE"] == "1"
make_versioned(user_cls=None, options={"native_versioning": NATIVE})


class Base(DeclarativeBase):
    metadata = sa.MetaData(
        naming_convention={"ix": "ix_%(column_0_label)s", "pk": "pk_%(table_name)s",
                           "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}
    )


class Author(Base):
    __tablename__ = "author"
    __versioned__ = {}
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    if STAGE < 2:
        name: Mapped[str] = mapped_column(sa.String(100))
    else:
        full_name: Mapped[str] = mapped_column(sa.String(100))
    if STAGE < 3:
        bio: Mapped[str | None] = mapped_column(sa.String(200))


if STAGE >= 4:
    class Book(Base):
        __tablename__ = "book" if STAGE < 5 else "volume"
        __versioned__ = {}
        id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
        author_id: Mapped[int] = mapped_column(sa.ForeignKey("author.id"))
        title: Mapped[str] = mapped_column(sa.String(100))

configure_mappers()
"""

ENV = """
import sqlalchemy as sa
from alembic import context

import scratch_models
from vestige.migrations import check_version_tables, comparison_options

metadata = scratch_models.Base.metadata
check_version_tables(metadata)
handed = context.config.attributes.get("connection")  # vestige.testing hands an Engine
engine = handed or sa.create_engine(context.config.get_main_option("sqlalchemy.url"))
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        **comparison_options(metadata),
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
"""

# Imports the heavy libraries once, then forks a child per stage (a fresh Continuum, no
# import cost): each request is one JSON line on stdin, answered by "DONE <exit code>".
SERVER = """
import json
import os
import sys
import traceback

import alembic.command
import alembic.config
import sqlalchemy.orm
import sqlalchemy_continuum
import vestige.migrations.check
import vestige.migrations

sqlalchemy.event.listen(
    sqlalchemy.pool.Pool,
    "connect",
    lambda dbapi, record: dbapi.execute("PRAGMA synchronous=OFF")
    if dbapi.__class__.__module__ == "sqlite3" else None,
)
STAGE_SCRIPT = compile(open("stage.py").read(), "stage.py", "exec")
for line in sys.stdin:
    request = json.loads(line)
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        os.environ.update(request["env"])
        code = 0
        try:
            exec(STAGE_SCRIPT, {"__name__": "stage", **request["globals"]})
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    print("DONE", os.waitstatus_to_exitcode(status), flush=True)
"""

STAGE = """
import json
import re
import sys
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.orm import Session
from sqlalchemy_continuum import version_class

import scratch_models as m
from vestige.migrations.check import check

config = Config()
config.set_main_option("script_location", str(Path("migrations").resolve()))
config.set_main_option("sqlalchemy.url", url)
engine = sa.create_engine(url)
out = {}


def name_column():
    return "name" if stage < 2 else "full_name"


if "autogen" in plan:
    script = command.revision(config, message=f"stage {stage}", autogenerate=True)
    text = Path(script.path).read_text()
    out["revision"] = text
    if stage in (2, 5):
        # As the rename note says: replace the drop and the add with rename_column; a
        # table rename likewise with rename_table. Trigger drops go first, (re)builds last.
        call = {
            2: ("rename_column('author', 'name', 'full_name')",
                "rename_column('author', 'full_name', 'name')"),
            5: ("rename_table('book', 'volume')", "rename_table('volume', 'book')"),
        }[stage]

        def around(body, rename):
            native = [line for line in body.splitlines() if "native." in line]
            drops = [line for line in native if "drop_audit_trigger" in line]
            rest = [line for line in native if line not in drops]
            return [*drops, "    " + rename, *rest]

        head, rest = text.split("def upgrade() -> None:")
        up, down = rest.split("def downgrade() -> None:")
        head = head.replace(
            "import sqlalchemy as sa",
            "import sqlalchemy as sa\\nfrom vestige.migrations import rename_column, rename_table",
        )
        Path(script.path).write_text(
            head + "def upgrade() -> None:\\n" + "\\n".join(around(up, call[0]))
            + "\\n\\n\\ndef downgrade() -> None:\\n" + "\\n".join(around(down, call[1])) + "\\n"
        )
if "roundtrip" in plan:
    command.downgrade(config, "-4")
    command.upgrade(config, "head")
if "upgrade" in plan:
    command.upgrade(config, "head")
if "write" in plan:
    key = stage + (100 if "roundtrip" in plan else 0)
    with Session(engine) as session:
        author = m.Author(id=key, **{name_column(): f"author {stage}"})
        session.add(author)
        session.commit()
        setattr(author, name_column(), f"author {stage} renamed")
        session.commit()
        if stage >= 4:
            book = m.Book(id=key, author_id=author.id, title="first")
            session.add(book)
            session.commit()
            session.delete(book)
            session.commit()
if "read" in plan:
    AuthorVersion = version_class(m.Author)
    with Session(engine) as session:
        rows = session.execute(sa.select(AuthorVersion).order_by(
            AuthorVersion.id, AuthorVersion.transaction_id)).scalars()
        out["author_versions"] = [
            [v.id, getattr(v, name_column()), v.operation_type, v.end_transaction_id is None]
            for v in rows
        ]
        out["version_columns"] = sorted(
            c["name"] for c in sa.inspect(session.connection()).get_columns("author_version"))
        out["bio_history"] = session.execute(sa.text(
            "SELECT bio FROM author_version WHERE bio IS NOT NULL ORDER BY transaction_id"
        )).scalars().all() if "bio" in out["version_columns"] else None
        if stage >= 4:
            BookVersion = version_class(m.Book)
            out["book_versions"] = [
                [v.id, v.operation_type] for v in session.execute(
                    sa.select(BookVersion).order_by(BookVersion.transaction_id)).scalars()
            ]
    out["authors"] = [list(r) for r in engine.connect().execute(
        sa.text("SELECT id FROM author ORDER BY id"))]
if "check" in plan:
    out["check"] = [f.line() for f in check(config, engine, m.Base.metadata).findings]
if "plugin" in plan:
    # vestige.testing's check over this whole history, from an empty database again
    from pytest_alembic import Config as PluginConfig
    from pytest_alembic import runner

    from vestige import testing

    command.downgrade(config, "base")
    with runner(PluginConfig.from_raw_config(config), engine) as context:
        testing.test_versioning_works_at_every_step(context, engine, m.Base.metadata, {})
    out["plugin"] = ["test_versioning_works_at_every_step"]
if "drift" in plan:
    from vestige.migrations.native import AuditTrigger

    def findings():
        return [f.line() for f in check(config, engine, m.Base.metadata).findings]

    old = AuditTrigger("author", ("id", "full_name", "bio"), ("id",))
    with engine.begin() as connection:
        connection.execute(sa.text(old.function_sql()))
    out["stale"] = findings()
    script = command.revision(config, message="resync", autogenerate=True)
    out["resync_revision"] = Path(script.path).read_text()
    command.upgrade(config, "head")
    out["after_resync"] = findings()
    with engine.begin() as connection:
        connection.execute(sa.text("DROP TRIGGER author_trigger ON author"))
        connection.execute(sa.text("DROP TRIGGER transaction_trigger ON transaction"))
    out["missing"] = findings()
engine.dispose()
print("RESULT " + json.dumps(out))
"""


class Stages:
    """Runs stages of the scratch project in forked children of one server process."""

    def __init__(self, project: Path, url: str, native: bool) -> None:
        self.url = url
        self.native = native
        self.stderr = (project / "stderr.txt").open("w")
        self.server = subprocess.Popen(
            [sys.executable, "server.py"],
            cwd=project,
            env={**os.environ, "PYTHONPATH": str(project)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
        )
        self.stderr_path = project / "stderr.txt"

    def run(self, stage: int, plan: str) -> dict[str, Any]:
        assert self.server.stdin is not None and self.server.stdout is not None
        request = {
            "env": {"SCRATCH_STAGE": str(stage), "SCRATCH_NATIVE": "1" if self.native else "0"},
            "globals": {"url": self.url, "stage": stage, "plan": plan},
        }
        self.server.stdin.write(json.dumps(request) + "\n")
        self.server.stdin.flush()
        result: dict[str, Any] = {}
        for line in self.server.stdout:
            if line.startswith("RESULT "):
                result = json.loads(line[len("RESULT ") :])
            elif line.startswith("DONE "):
                self.stderr.flush()
                assert line.split()[1] == "0", self.stderr_path.read_text()[-3000:]
                return result
        raise AssertionError(f"the stage server died: {self.stderr_path.read_text()[-3000:]}")

    def close(self) -> None:
        if self.server.stdin:
            self.server.stdin.close()
        self.server.wait(timeout=30)
        if self.server.stdout:
            self.server.stdout.close()
        self.stderr.close()


@pytest.fixture
def stages(db_url: str, backend: str, tmp_path: Path) -> Iterator[Stages]:
    """The scratch project in ``tmp_path``; PostgreSQL runs it with native versioning."""
    (tmp_path / "migrations" / "versions").mkdir(parents=True)
    (tmp_path / "scratch_models.py").write_text(MODELS)
    (tmp_path / "stage.py").write_text(STAGE)
    (tmp_path / "server.py").write_text(SERVER)
    (tmp_path / "migrations" / "env.py").write_text(ENV)
    root = ROOT
    template = (root / "migrations" / "script.py.mako").read_text()
    (tmp_path / "migrations" / "script.py.mako").write_text(template)
    (tmp_path / "pyproject.toml").write_text('[tool.vestige]\nmodels = "scratch_models"\n')
    runner = Stages(tmp_path, db_url, native=backend == "postgresql")
    yield runner
    runner.close()


def test_stairway_keeps_history_through_add_rename_drop(stages: Stages) -> None:
    native = stages.native
    every = "autogen,upgrade,write,read,check"

    first = stages.run(1, every)
    assert first["check"] == []
    assert first["author_versions"] == [[1, "author 1", 0, False], [1, "author 1 renamed", 1, True]]
    if native:
        assert "native.install_transaction_trigger()" in first["revision"]
        assert "native.sync_audit_trigger('author', ['id', 'name', 'bio']" in first["revision"]
        assert "native.drop_audit_trigger('author')" in first["revision"]

    second = stages.run(2, every)
    rename_note = RENAME_NOTE.format(
        table="author", version_table="author_version", old="name", new="full_name"
    )
    assert " ".join(rename_note.split()[:8]) in " ".join(second["revision"].split())
    assert second["check"] == []
    # renamed, not dropped: stage 1's history reads under the new name
    assert second["author_versions"][:2] == [
        [1, "author 1", 0, False],
        [1, "author 1 renamed", 1, True],
    ]
    assert second["author_versions"][2:] == [
        [2, "author 2", 0, False],
        [2, "author 2 renamed", 1, True],
    ]

    third = stages.run(3, every)
    kept = KEPT_NOTE.format(version_table="author_version", table="author", column="bio")
    assert " ".join(kept.split()[:6]) in " ".join(third["revision"].split())
    assert re.search(r"drop_column\((?:'author', )?'bio'\)", third["revision"])
    assert "bio" in third["version_columns"]
    assert third["check"] == []
    assert len(third["author_versions"]) == 6

    fourth = stages.run(4, every)
    assert fourth["check"] == []
    assert fourth["book_versions"] == [[4, 0], [4, 2]]
    if native:
        assert "native.sync_audit_trigger('book'" in fourth["revision"]
        assert "sync_audit_trigger('author'" not in fourth["revision"]

    fifth = stages.run(5, every)
    assert fifth["check"] == []
    dropped = DROPPED_TABLE_NOTE.format(table="book", version_table="book_version")
    assert " ".join(dropped.split()[:10]) in " ".join(fifth["revision"].split())
    # renamed with its version table: book's history reads as volume's
    assert fifth["book_versions"] == [[4, 0], [4, 2], [5, 0], [5, 2]]
    if native:
        assert "native.sync_audit_trigger('volume'" in fifth["revision"]
        assert "native.drop_audit_trigger('book')" in fifth["revision"]

    # down to stage 1 (book gone, bio back, name back) and up: rows and history stay, and
    # versioning (native: the restored, then rebuilt triggers) still works
    again = stages.run(5, "roundtrip,write,read,check,plugin" + ",drift" * native)
    assert again["check"] == []
    assert again["plugin"] == ["test_versioning_works_at_every_step"]
    assert again["authors"] == [[1], [2], [3], [4], [5], [105]]
    assert again["author_versions"][:10] == fifth["author_versions"]
    assert again["author_versions"][10:] == [
        [105, "author 5", 0, False],
        [105, "author 5 renamed", 1, True],
    ]
    assert again["book_versions"] == [[105, 0], [105, 2]]

    if native:
        _assert_native_drift_found(again)


def _assert_native_drift_found(drift: dict[str, Any]) -> None:
    """``vestige check`` on a stale, then a missing trigger; autogenerate repairs the first."""
    assert drift["stale"] == [
        "author: native versioning: audit function author_audit does not match the current "
        "columns; fix: " + MESSAGES["stale-trigger"][1]
    ]
    assert (
        "native.sync_audit_trigger('author', ['id', 'full_name'], primary_key=['id'])"
        in (drift["resync_revision"])
    )
    assert drift["after_resync"] == []
    assert [line.split(":")[0] for line in drift["missing"]] == ["transaction", "author"]
    assert "transaction trigger (or hstore) is missing" in drift["missing"][0]
    assert (
        "audit trigger author_trigger or function author_audit is missing" in (drift["missing"][1])
    )
