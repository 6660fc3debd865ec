"""Vestige's set-based unit of work: fewer statements, the same history as stock."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
import sqlalchemy_continuum
import sqlalchemy_continuum.operation
import sqlalchemy_continuum.plugins.base
from sqlalchemy.orm import Session

import models
from tests.support.history_invariants import history_problems
from vestige.versioning import versioning_manager
from vestige.versioning.unit_of_work import SetBasedUnitOfWork


@contextmanager
def statements(engine: sa.Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        seen.append(" ".join(statement.split()))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def _assert_history(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        assert history_problems(conn) == []


def test_make_versioned_installs_the_set_based_unit_of_work(schema_engine: sa.Engine) -> None:
    assert versioning_manager.uow_class is SetBasedUnitOfWork
    with Session(schema_engine) as session:
        session.add(models.License(spdx_id="MIT", name="MIT License"))
        session.flush()
        assert type(versioning_manager.unit_of_work(session)) is SetBasedUnitOfWork


def _update_in_one_flush(session: Session, size: int) -> list[str]:
    """Add ``size`` packages, then change them all in one flush: its statements.

    ``session`` must not expire on commit: changing an expired object loads it, and the
    load autoflushes the change before it, so the last flush would hold one package.
    """
    assert not session.expire_on_commit
    packages = [models.Package(name=f"pkg{size}-{i}", summary="v1") for i in range(size)]
    session.add_all(packages)
    session.commit()
    for package in packages:
        package.summary = "v2"
    engine = session.get_bind()
    assert isinstance(engine, sa.Engine)
    with statements(engine) as seen:
        session.commit()
    return seen


def test_one_update_closes_every_previous_version_of_a_flush(schema_engine: sa.Engine) -> None:
    with Session(schema_engine, expire_on_commit=False) as session:
        seen = _update_in_one_flush(session, 40)

    on_versions = [s for s in seen if "package_version" in s]
    updates = [s for s in on_versions if s.startswith("UPDATE")]
    selects = [s for s in on_versions if s.startswith("SELECT")]
    assert len(updates) == 1, on_versions
    assert "end_transaction_id" in updates[0]
    assert selects == []
    with schema_engine.connect() as conn:
        closed = models.PackageVersion.__table__.c.end_transaction_id.is_not(None)
        count = sa.select(sa.func.count()).select_from(models.PackageVersion).where(closed)
        assert conn.scalar(count) == 40
    _assert_history(schema_engine)


def test_only_net_changes_of_versioned_records_open_a_transaction(
    schema_engine: sa.Engine,
) -> None:
    transaction_cls = versioning_manager.transaction_cls
    with Session(schema_engine, expire_on_commit=False) as session:
        packages = [models.Package(name=f"pkg{i}", summary="v1") for i in range(30)]
        session.add_all(packages)
        session.commit()
        count = sa.select(sa.func.count()).select_from(transaction_cls)
        assert session.scalar(count) == 1
        first = session.scalar(sa.select(sa.func.min(transaction_cls.id)))

        for package in packages:
            package.summary = "v1"  # dirty, but no net change
        session.commit()
        assert session.scalar(count) == 1

        packages[-1].summary = "v2"
        session.commit()
        assert session.scalar(count) == 2

        session.delete(packages[0])
        session.commit()
        assert session.scalar(count) == 3
        rows = session.execute(
            sa.select(models.PackageVersion.name, models.PackageVersion.operation_type)
            .where(models.PackageVersion.transaction_id > first)
            .order_by(models.PackageVersion.transaction_id)
        ).all()

    assert [tuple(row) for row in rows] == [("pkg29", 1), ("pkg0", 2)]
    _assert_history(schema_engine)


def test_record_flushed_twice_in_one_transaction_is_closed_once(schema_engine: sa.Engine) -> None:
    with Session(schema_engine) as session:
        package = models.Package(name="attrs", summary="one")
        session.add(package)
        session.commit()
        package.summary = "two"
        session.flush()
        package.summary = "three"
        session.flush()
        session.commit()
        versions = package.versions.all()

    assert [v.summary for v in versions] == ["one", "three"]
    assert versions[0].end_transaction_id == versions[1].transaction_id
    assert versions[1].end_transaction_id is None
    _assert_history(schema_engine)


@pytest.mark.parametrize(
    ("commit_between", "expected"),
    [
        (True, [(0, "MIT"), (2, "MIT"), (0, "MIT License")]),
        # One flush: SQLAlchemy writes an UPDATE of the row ("row switch"), and so does
        # Continuum record it.
        (False, [(0, "MIT"), (1, "MIT License")]),
        # Two flushes of one transaction: as Continuum's Operations.add_insert, the
        # insert of a key deleted earlier in the transaction is an update, and the
        # record keeps one version for the transaction.
        (None, [(0, "MIT"), (1, "MIT License")]),
    ],
    ids=["separate-transactions", "same-flush", "separate-flushes"],
)
def test_delete_then_reinsert_of_the_same_key_continues_the_chain(
    schema_engine: sa.Engine, commit_between: bool | None, expected: list[tuple[int, str]]
) -> None:
    with Session(schema_engine) as session:
        session.add(models.License(id=7, spdx_id="MIT", name="MIT"))
        session.commit()
        session.delete(session.get(models.License, 7))
        if commit_between:
            session.commit()
        elif commit_between is None:
            session.flush()
        session.add(models.License(id=7, spdx_id="MIT", name="MIT License"))
        session.commit()
        version = models.LicenseVersion
        rows = session.execute(
            sa.select(
                version.operation_type,
                version.name,
                version.transaction_id,
                version.end_transaction_id,
            ).order_by(version.transaction_id)
        ).all()

    assert [(row.operation_type, row.name) for row in rows] == expected
    ends = [row.end_transaction_id for row in rows]
    assert ends == [row.transaction_id for row in rows[1:]] + [None]
    _assert_history(schema_engine)


class _ReadsOperations(sqlalchemy_continuum.plugins.base.Plugin):  # type: ignore[misc]
    """A plugin that reads ``uow.operations`` before the versions of each flush are written."""

    def __init__(self) -> None:
        self.seen: list[dict[tuple[type, object], tuple[int, bool]]] = []

    def before_create_version_objects(self, uow: object, session: Session) -> None:
        objects = uow.operations.objects  # type: ignore[attr-defined]
        self.seen.append({key: (op.type, op.processed) for key, op in objects.items()})


def _operations(session: Session) -> dict[tuple[type, object], tuple[int, bool]]:
    objects = versioning_manager.unit_of_work(session).operations.objects
    return {key: (op.type, op.processed) for key, op in objects.items()}


@pytest.mark.parametrize("plugin_reads", [False, True], ids=["unread", "read-by-plugin"])
def test_operations_are_continuums_whenever_they_are_read(
    schema_engine: sa.Engine, plugin_reads: bool
) -> None:
    """``uow.operations`` holds the Operation objects stock would, read before or after
    the versions are written; the versions are the same either way."""
    insert, update, delete = (
        sqlalchemy_continuum.operation.Operation.INSERT,
        sqlalchemy_continuum.operation.Operation.UPDATE,
        sqlalchemy_continuum.operation.Operation.DELETE,
    )
    plugin = _ReadsOperations()
    if plugin_reads:
        versioning_manager.plugins.plugins.append(plugin)
    try:
        with Session(schema_engine) as session:
            one, two = (
                models.License(spdx_id="MIT", name="MIT"),
                models.License(spdx_id="BSD", name="BSD"),
            )
            session.add_all([one, two])
            session.flush()
            uow = versioning_manager.unit_of_work(session)
            assert bool(uow.operations) and uow.operations.entities == {models.License}
            keys = [(models.License, (one.id,)), (models.License, (two.id,))]
            assert _operations(session) == {keys[0]: (insert, True), keys[1]: (insert, True)}
            one.name = "MIT License"
            session.delete(two)
            session.flush()
            assert _operations(session) == {keys[0]: (update, True), keys[1]: (delete, True)}
            session.commit()
            rows = session.execute(
                sa.select(models.LicenseVersion.spdx_id, models.LicenseVersion.name).order_by(
                    models.LicenseVersion.spdx_id
                )
            ).all()
    finally:
        if plugin_reads:
            versioning_manager.plugins.plugins.remove(plugin)

    # One version per record and transaction: the last write of each.
    assert [tuple(row) for row in rows] == [("BSD", "BSD"), ("MIT", "MIT License")]
    if plugin_reads:  # read before each flush's versions: not processed yet
        assert plugin.seen == [
            {keys[0]: (insert, False), keys[1]: (insert, False)},
            {keys[0]: (update, False), keys[1]: (delete, False)},
        ]
    _assert_history(schema_engine)


def test_savepoints_keep_a_consistent_history(schema_engine: sa.Engine) -> None:
    # A savepoint rolled back after a flush inside it breaks stock Continuum as well
    # (StaleDataError on the reused version object), so it is not exercised here.
    with Session(schema_engine) as session:
        package = models.Package(name="flask", summary="one")
        session.add(package)
        session.commit()
        package.summary = "two"
        session.flush()
        with session.begin_nested():
            package.summary = "three"
            session.flush()
        savepoint = session.begin_nested()
        session.add(models.Package(name="discarded"))
        package.homepage = "https://discarded.example"
        savepoint.rollback()
        session.commit()
        versions = package.versions.all()

    assert [(v.summary, v.homepage) for v in versions] == [("one", None), ("three", None)]
    _assert_history(schema_engine)


def _random_workload(engine: sa.Engine, seed: int) -> None:
    """Inserts, updates, deletes and many-to-many changes, in single and multi-flush txs."""
    rng = random.Random(seed)
    with Session(engine) as session:
        maintainers = [models.Maintainer(username=f"m{i}", email=f"m{i}@x.org") for i in range(4)]
        session.add_all(maintainers)
        session.commit()
        for step in range(15):
            live = session.scalars(sa.select(models.Package).order_by(models.Package.id)).all()
            for _ in range(rng.randint(1, 3)):
                choice = rng.random()
                if choice < 0.35 or not live:
                    package = models.Package(name=f"p{step}-{rng.random()}", summary="new")
                    package.maintainers = rng.sample(maintainers, rng.randint(0, 2))
                    package.releases = [models.Release(version=f"{step}.0")]
                    session.add(package)
                elif choice < 0.8:
                    package = rng.choice(live)
                    package.summary = f"s{step}-{rng.randint(0, 9)}"
                    if package.releases and rng.random() < 0.5:
                        package.releases[0].yanked = not package.releases[0].yanked
                else:
                    session.delete(rng.choice(live))
                    live = [p for p in live if p not in session.deleted]
                session.flush()
            session.commit()


def _history_rows(engine: sa.Engine) -> dict[str, list[tuple[object, ...]]]:
    tables = {}
    with engine.connect() as conn:
        for name, table in sorted(models.Base.metadata.tables.items()):
            if name.endswith("_version"):
                order = [c for c in table.primary_key.columns]
                tables[name] = [tuple(r) for r in conn.execute(sa.select(table).order_by(*order))]
    return tables


def _without_timestamps(rows: dict[str, list[tuple[object, ...]]]) -> dict[str, object]:
    return {
        name: [tuple(v for v in row if not hasattr(v, "isoformat")) for row in table]
        for name, table in rows.items()
    }


def test_history_equals_stock_for_the_same_workload(
    db_url: str, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    histories = []
    for uow_class in (sqlalchemy_continuum.UnitOfWork, SetBasedUnitOfWork):
        if backend == "postgresql":
            from tests.support.backends import reset_postgres_schema

            reset_postgres_schema(sa.make_url(db_url))
            url = db_url
        else:
            url = db_url.replace("test.db", f"{uow_class.__name__}.db")
        engine = sa.create_engine(url)
        models.Base.metadata.create_all(engine)
        monkeypatch.setattr(versioning_manager, "uow_class", uow_class)
        _random_workload(engine, seed=20261122)
        histories.append(_without_timestamps(_history_rows(engine)))
        _assert_history(engine)
        engine.dispose()
    stock, vestige = histories
    assert sum(len(rows) for rows in vestige.values()) > 30
    assert vestige == stock


_KEY_TYPES = sa.MetaData()
_KEYED = sa.Table(
    "keyed",
    _KEY_TYPES,
    sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("label", sa.String(20), primary_key=True),
    sa.Column("token", sa.Uuid, primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
)


@pytest.mark.parametrize(
    ("names", "one_parameter"),
    [
        (("number",), True),
        (("label",), True),
        (("token",), True),
        (("number", "label", "token"), True),
        (("day",), False),  # not a plain key type: an IN list
        (("number", "day"), False),
    ],
)
def test_match_keys_selects_exactly_the_given_keys(
    engine: sa.Engine, names: tuple[str, ...], one_parameter: bool
) -> None:
    """Keys bound in (match_keys), bound at execution (KeyMatch), and joined (SQLite)."""
    import datetime
    import random
    import uuid

    from vestige.versioning.keys import KeyMatch, match_keys

    _KEY_TYPES.create_all(engine)
    rows = [
        {
            "number": i,
            "label": f"label {i % 7}",
            "token": uuid.UUID(int=i * 7919),
            "day": datetime.date(2026, 1, 1) + datetime.timedelta(days=i % 5),
        }
        for i in range(60)
    ]
    columns = [_KEYED.c[name] for name in names]
    every = [tuple(row[name] for name in names) for row in rows]
    keys = sorted(set(every))[1::2]  # every other distinct key
    random.Random(4).shuffle(keys)  # in no particular order, as a flush gives them
    expected = sorted(key for key in every if key in set(keys))
    dialect = engine.dialect.name
    match = KeyMatch(columns, dialect)
    queries = [
        (sa.select(*columns).where(match_keys(columns, keys, dialect)), {}),
        (sa.select(*columns).where(match.clause), match.params(keys)),
    ]
    if match.keys_table is not None and match.on is not None:
        joined = match.keys_table.join(_KEYED, match.on)
        queries.append((sa.select(*columns).select_from(joined), match.params(keys)))
    assert (match.keys_table is not None) is (dialect == "sqlite" and one_parameter)
    with engine.begin() as conn:
        conn.execute(_KEYED.insert(), rows)
        for query, params in queries:
            with statements(engine) as seen:
                found = conn.execute(query, params)
                assert sorted(tuple(row) for row in found) == expected, seen[0]
            sent_as_one = any(marker in seen[0] for marker in ("json_each(", "any(", "unnest("))
            assert sent_as_one is one_parameter, seen[0]


def test_flushes_of_any_size_reuse_the_same_statements(schema_engine: sa.Engine) -> None:
    """The copy and the close take their keys as parameters: one SQL text, cached."""
    texts = []
    with Session(schema_engine, expire_on_commit=False) as session:
        for size in (3, 40):
            seen = _update_in_one_flush(session, size)
            texts.append(sorted(s for s in seen if "package_version" in s))
    small, large = texts
    assert len(small) == 2, small  # one copy, one close
    assert small == large
    _assert_history(schema_engine)


def test_closing_versions_looks_records_up_by_key(schema_engine: sa.Engine) -> None:
    """The close must not walk every open version (one per live record) to find a few."""
    from sqlalchemy_continuum.utils import version_class

    from vestige.versioning.row_plans import CloseTarget, close_statements

    with Session(schema_engine) as session:
        session.add_all(models.Package(name=f"pkg{i}", summary="v1") for i in range(3000))
        session.commit()
    dialect = schema_engine.dialect.name
    target = CloseTarget(version_class(models.Package), "transaction_id", "end_transaction_id")
    target.keys.update({(5,), (1500,), (2999,)})
    ((statement, parameters),) = close_statements(target, 10**6, dialect)
    compiled = statement.compile(dialect=schema_engine.dialect)
    with schema_engine.connect() as conn:
        if dialect == "sqlite":
            # No ANALYZE, as in most SQLite databases: the planner has no statistics.
            params = compiled.construct_params(parameters)
            sql, values = str(compiled), tuple(params[name] for name in compiled.positiontup or ())
            plan = " | ".join(
                row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", values)
            )
            assert "USING INDEX ix_package_version_end_transaction_id" not in plan, plan
            assert "package_version USING" in plan and "(id=?)" in plan, plan
        else:
            conn.exec_driver_sql("ANALYZE package_version")
            sql = f"EXPLAIN {compiled}"
            params = compiled.construct_params(parameters)
            plan = " | ".join(row[0] for row in conn.exec_driver_sql(sql, params))
            assert "Seq Scan on package_version" not in plan, plan
            assert "ix_package_version_end_transaction_id" not in plan, plan
        # And it closes exactly those three records' open versions.
        closed = conn.execute(statement, parameters).rowcount
        assert closed == 3
