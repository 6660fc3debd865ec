"""The bulk-write guard: bulk statements on versioned models warn, raise, or get versioned."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

import models
from tests.support.history_invariants import history_problems
from vestige.config import Settings, load_settings
from vestige.errors import ConfigError, UnversionedWriteError, UnversionedWriteWarning
from vestige.versioning.bulk import (
    BAD_MODE_MESSAGE,
    SKIP_OPTION,
    BulkWriteMode,
    bulk_write_mode,
    install_bulk_write_guard,
)

INSERT, UPDATE, DELETE = 0, 1, 2


@pytest.fixture
def mode(request: pytest.FixtureRequest) -> Iterator[BulkWriteMode]:
    value: BulkWriteMode = request.param
    install_bulk_write_guard(value)
    yield value
    install_bulk_write_guard("warn")


def _seed(engine: sa.Engine, count: int = 5) -> list[int]:
    with Session(engine) as session:
        packages = [models.Package(name=f"pkg{i}", summary="old") for i in range(count)]
        session.add_all(packages)
        session.commit()
        return [package.id for package in packages]


def _versions(session: Session) -> list[tuple[int, str | None, int, int | None, int]]:
    version = models.PackageVersion
    rows = session.execute(
        sa.select(
            version.id,
            version.summary,
            version.operation_type,
            version.end_transaction_id,
            version.transaction_id,
        ).order_by(version.id, version.transaction_id)
    )
    return [tuple(row) for row in rows]  # type: ignore[misc]


def _assert_history(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        assert history_problems(conn) == []


# --- warn ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["warn"], indirect=True)
def test_warn_names_the_model_and_statement_and_lets_it_run(
    schema_engine: sa.Engine, mode: str
) -> None:
    ids = _seed(schema_engine)
    with Session(schema_engine) as session:
        before = _versions(session)
        statement = sa.update(models.Package).where(models.Package.id == ids[0])
        with pytest.warns(
            UnversionedWriteWarning, match=r"UPDATE on versioned model Package"
        ) as caught:
            session.execute(statement.values(summary="new"))
        assert caught[0].filename == __file__  # points at the code that ran the statement
        with pytest.warns(
            UnversionedWriteWarning, match=r"DELETE on versioned model Package.*DELETE FROM package"
        ):
            session.execute(sa.delete(models.Package).where(models.Package.id == ids[1]))
        with pytest.warns(
            UnversionedWriteWarning, match=r"INSERT on versioned model Package.*insert\(Package\)"
        ):
            session.execute(sa.insert(models.Package), [{"name": "bulk", "summary": "b"}])
        session.commit()
        assert session.get(models.Package, ids[0]).summary == "new"  # type: ignore[union-attr]
        assert session.get(models.Package, ids[1]) is None
        assert _versions(session) == before


@pytest.mark.parametrize("mode", ["warn"], indirect=True)
def test_unversioned_tables_and_opted_out_statements_pass_silently(
    schema_engine: sa.Engine, mode: str
) -> None:
    ids = _seed(schema_engine, 1)
    with Session(schema_engine) as session:
        session.execute(sa.update(models.Transaction).values(remote_addr="192.0.2.9"))
        session.execute(
            sa.update(models.Package).values(summary="quiet"),
            execution_options={SKIP_OPTION: True},
        )
        session.commit()
        assert session.get(models.Package, ids[0]).summary == "quiet"  # type: ignore[union-attr]


# --- raise --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["raise"], indirect=True)
def test_raise_refuses_before_anything_changes(schema_engine: sa.Engine, mode: str) -> None:
    ids = _seed(schema_engine)
    statements = [
        sa.update(models.Package).values(summary="new"),
        sa.delete(models.Package).where(models.Package.id.in_(ids[:2])),
        sa.insert(models.Package).values(name="bulk"),
    ]
    with Session(schema_engine) as session:
        for statement in statements:
            with pytest.raises(UnversionedWriteError, match="bulk_writes"):
                session.execute(statement)
        session.commit()
        names = session.scalars(sa.select(models.Package.summary)).all()
        assert names == ["old"] * len(ids)


# --- version ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["version"], indirect=True)
def test_version_mode_versions_a_bulk_update(schema_engine: sa.Engine, mode: str) -> None:
    ids = _seed(schema_engine)
    with Session(schema_engine) as session:
        session.execute(
            sa.update(models.Package).where(models.Package.id.in_(ids[:2])).values(summary="new")
        )
        session.execute(
            sa.update(models.Package)
            .where(models.Package.name == sa.bindparam("chosen"))
            .values(summary="new"),
            {"chosen": "pkg2"},
        )
        session.commit()
        package = session.get(models.Package, ids[0])
        assert package is not None
        assert [v.summary for v in package.versions] == ["old", "new"]
        assert [v.operation_type for v in package.versions] == [INSERT, UPDATE]
        changed = session.scalars(sa.select(models.PackageVersion.id).filter_by(summary="new"))
        assert sorted(changed) == sorted(ids[:3])
        untouched = session.get(models.Package, ids[4])
        assert untouched is not None and untouched.versions.count() == 1
    _assert_history(schema_engine)


@pytest.mark.parametrize("mode", ["version"], indirect=True)
def test_version_mode_versions_a_bulk_delete(schema_engine: sa.Engine, mode: str) -> None:
    ids = _seed(schema_engine)
    with Session(schema_engine) as session:
        session.execute(sa.delete(models.Package).where(models.Package.summary == "old"))
        session.commit()
        rows = _versions(session)
    assert [(row[0], row[2]) for row in rows] == [
        (key, operation) for key in ids for operation in (INSERT, DELETE)
    ]
    _assert_history(schema_engine)


@pytest.mark.parametrize("mode", ["version"], indirect=True)
def test_version_mode_versions_bulk_inserts_with_and_without_keys(
    schema_engine: sa.Engine, mode: str
) -> None:
    with Session(schema_engine) as session:
        result = session.execute(
            sa.insert(models.Package), [{"name": f"auto{i}", "summary": "a"} for i in range(4)]
        )
        assert result is not None
        session.execute(sa.insert(models.Package), [{"id": 100, "name": "keyed"}])
        session.commit()
        live = session.scalars(sa.select(models.Package.id)).all()
        rows = _versions(session)
    assert sorted(live) == sorted(row[0] for row in rows)
    assert {row[2] for row in rows} == {INSERT}
    _assert_history(schema_engine)


@pytest.mark.parametrize("mode", ["version"], indirect=True)
def test_version_mode_versions_bulk_update_by_primary_key(
    schema_engine: sa.Engine, mode: str
) -> None:
    ids = _seed(schema_engine, 3)
    with Session(schema_engine) as session:
        session.execute(
            sa.update(models.Package), [{"id": key, "summary": f"s{key}"} for key in ids]
        )
        session.commit()
        rows = _versions(session)
    assert [row[1] for row in rows if row[3] is None] == [f"s{key}" for key in ids]
    _assert_history(schema_engine)


@pytest.mark.parametrize("mode", ["version"], indirect=True)
def test_version_mode_mixes_with_session_changes_in_one_transaction(
    schema_engine: sa.Engine, mode: str
) -> None:
    ids = _seed(schema_engine, 2)
    with Session(schema_engine) as session:
        package = session.get(models.Package, ids[0])
        assert package is not None
        package.summary = "session"
        session.flush()
        session.execute(
            sa.update(models.Package).where(models.Package.id == ids[0]).values(homepage="h")
        )
        session.execute(sa.update(models.Package).values(summary="bulk"))
        session.refresh(package)
        package.homepage = "later"
        session.commit()
        versions = package.versions.all()
        # one version per transaction: the bulk writes refreshed the session's version
        assert [(v.summary, v.homepage) for v in versions] == [("old", None), ("bulk", "later")]
    _assert_history(schema_engine)


# --- the mode -----------------------------------------------------------------------


def test_mode_comes_from_the_argument_then_settings_then_warn(tmp_path: Path) -> None:
    settings = Settings(project_root=tmp_path, database_url="sqlite://")
    assert bulk_write_mode(settings) == "warn"
    settings = Settings(tmp_path, "sqlite://", bulk_writes="version")
    assert bulk_write_mode(settings) == "version"
    assert bulk_write_mode(settings, "raise") == "raise"
    with pytest.raises(ConfigError) as caught:
        bulk_write_mode(settings, "log")
    assert str(caught.value) == BAD_MODE_MESSAGE.format(modes="warn, raise, version", value="log")
    (tmp_path / "pyproject.toml").write_text('[tool.vestige]\nbulk_writes = "log"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path / "pyproject.toml")
    assert str(caught.value) == BAD_MODE_MESSAGE.format(modes="warn, raise, version", value="log")


def test_mode_does_not_depend_on_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "service"
    project.mkdir()
    (project / "pyproject.toml").write_text('[tool.vestige]\nbulk_writes = "raise"\n')
    settings = load_settings(project / "pyproject.toml")
    modes = {}
    for where in (project, tmp_path):
        monkeypatch.chdir(where)
        modes[where.name] = (
            install_bulk_write_guard().mode,
            install_bulk_write_guard(settings=settings).mode,
        )
    install_bulk_write_guard("warn")
    # Without settings nothing is read behind the caller's back; with them, the same mode
    # wherever the service starts.
    assert modes == {project.name: ("warn", "raise"), tmp_path.name: ("warn", "raise")}
