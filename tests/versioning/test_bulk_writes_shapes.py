"""``bulk_writes = "version"`` on key-changing UPDATEs and on inheritance hierarchies.

Each scenario runs twice on a fresh schema: once through the ORM, one object at a time,
and once as bulk statements in ``version`` mode. Continuum's own ``versions`` of every
record touched must come out the same, and the history invariants H1-H3 must hold.

The models are the module's own (a plain model, joined inheritance two levels deep,
single-table inheritance). They are declared by a module-scoped fixture and taken out of
Continuum's manager again at the end of the module: declared at import, they would be
in every other module's versioned models, whose databases do not have their tables.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy_continuum import version_class
from sqlalchemy_continuum.plugins import TransactionChangesPlugin

import models
from tests.support.history_invariants import history_problems
from vestige.errors import UnversionedWriteError
from vestige.versioning import configure_mappers, versioning_manager
from vestige.versioning.bulk import install_bulk_write_guard
from vestige.versioning.bulk_versions import (
    JOINED_DELETE_MESSAGE,
    JOINED_INSERT_MESSAGE,
    JOINED_KEY_MESSAGE,
    UNCASCADED_DELETE_MESSAGE,
    UNTYPED_MESSAGE,
)

INSERT, UPDATE, DELETE = 0, 1, 2


def _declare() -> SimpleNamespace:
    class Base(DeclarativeBase):
        pass

    class ShapeRelease(Base):
        __tablename__ = "shape_release"
        __versioned__: ClassVar[dict[str, Any]] = {}
        id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
        version: Mapped[str] = mapped_column(sa.String(20))
        notes: Mapped[str | None] = mapped_column(sa.String(50))

    class ShapeDocument(Base):
        __tablename__ = "shape_document"
        __versioned__: ClassVar[dict[str, Any]] = {}
        id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
        kind: Mapped[str] = mapped_column(sa.String(20))
        title: Mapped[str] = mapped_column(sa.String(50))
        __mapper_args__: ClassVar[dict[str, Any]] = {
            "polymorphic_on": "kind",
            "polymorphic_identity": "document",
        }

    class ShapeInvoice(ShapeDocument):
        __tablename__ = "shape_invoice"
        id: Mapped[int] = mapped_column(
            sa.ForeignKey("shape_document.id", ondelete="CASCADE"), primary_key=True
        )
        amount: Mapped[int]
        __mapper_args__: ClassVar[dict[str, Any]] = {"polymorphic_identity": "invoice"}

    class ShapeCreditNote(ShapeInvoice):
        __tablename__ = "shape_credit_note"
        id: Mapped[int] = mapped_column(
            sa.ForeignKey("shape_invoice.id", ondelete="CASCADE"), primary_key=True
        )
        reason: Mapped[str] = mapped_column(sa.String(50))
        __mapper_args__: ClassVar[dict[str, Any]] = {"polymorphic_identity": "credit_note"}

    class ShapeMemo(ShapeDocument):
        """A child whose foreign key does not cascade: a DELETE of its parent row fails."""

        __tablename__ = "shape_memo"
        id: Mapped[int] = mapped_column(sa.ForeignKey("shape_document.id"), primary_key=True)
        body: Mapped[str] = mapped_column(sa.String(50))
        __mapper_args__: ClassVar[dict[str, Any]] = {"polymorphic_identity": "memo"}

    class ShapeParty(Base):
        __tablename__ = "shape_party"
        __versioned__: ClassVar[dict[str, Any]] = {}
        id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
        type: Mapped[str] = mapped_column(sa.String(20))
        name: Mapped[str] = mapped_column(sa.String(50))
        __mapper_args__: ClassVar[dict[str, Any]] = {
            "polymorphic_on": "type",
            "polymorphic_identity": "party",
        }

    class ShapePerson(ShapeParty):
        born: Mapped[int | None] = mapped_column(nullable=True)
        __mapper_args__: ClassVar[dict[str, Any]] = {"polymorphic_identity": "person"}

    class ShapeCompany(ShapeParty):
        vat: Mapped[str | None] = mapped_column(sa.String(20), nullable=True)
        __mapper_args__: ClassVar[dict[str, Any]] = {"polymorphic_identity": "company"}

    class ShapeNote(Base):
        """Joined inheritance without a ``polymorphic_on`` column."""

        __tablename__ = "shape_note"
        __versioned__: ClassVar[dict[str, Any]] = {}
        id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
        text: Mapped[str] = mapped_column(sa.String(50))

    class ShapeSticky(ShapeNote):
        __tablename__ = "shape_sticky"
        id: Mapped[int] = mapped_column(sa.ForeignKey("shape_note.id"), primary_key=True)
        color: Mapped[str] = mapped_column(sa.String(20))

    return SimpleNamespace(
        Note=ShapeNote,
        Sticky=ShapeSticky,
        Base=Base,
        Release=ShapeRelease,
        Document=ShapeDocument,
        Invoice=ShapeInvoice,
        CreditNote=ShapeCreditNote,
        Memo=ShapeMemo,
        Party=ShapeParty,
        Person=ShapePerson,
        Company=ShapeCompany,
    )


@pytest.fixture(scope="module")
def shapes() -> Iterator[SimpleNamespace]:
    manager = versioning_manager
    plugins = list(manager.plugins.plugins)
    saved = manager.declarative_base, getattr(manager, "metadata", None)
    # TransactionChangesPlugin builds its model again whenever new versioned classes are
    # configured; the reference models' one is kept.
    manager.plugins.plugins[:] = [p for p in plugins if not isinstance(p, TransactionChangesPlugin)]
    try:
        declared = _declare()
        configure_mappers()
    finally:
        manager.plugins.plugins[:] = plugins
        manager.declarative_base, manager.metadata = saved
    yield declared
    for mapper in declared.Base.registry.mappers:
        version = manager.version_class_map.pop(mapper.class_, None)
        manager.parent_class_map.pop(version, None)
        manager.tables.pop(mapper.class_, None)


@pytest.fixture
def shape_engine(db_url: str, backend: str, shapes: SimpleNamespace) -> Iterator[sa.Engine]:
    engine = sa.create_engine(db_url)
    if backend == "sqlite":
        # As on PostgreSQL: foreign keys enforced, ON DELETE CASCADE applied.
        @sa.event.listens_for(engine, "connect")
        def foreign_keys(connection: Any, record: Any) -> None:
            connection.execute("PRAGMA foreign_keys = ON")

    _fresh(engine, shapes)
    yield engine
    engine.dispose()


@pytest.fixture
def version_mode() -> Iterator[None]:
    install_bulk_write_guard("version")
    yield
    install_bulk_write_guard("warn")


def _fresh(engine: sa.Engine, shapes: SimpleNamespace) -> None:
    for metadata in (shapes.Base.metadata, models.Base.metadata):
        metadata.drop_all(engine)
    for metadata in (models.Base.metadata, shapes.Base.metadata):
        metadata.create_all(engine)


Record = tuple[type, int]
Change = Callable[[Session], None]


def _versions(session: Session, cls: type, key: int) -> list[dict[str, Any]]:
    """Continuum's versions of a record: its ``versions``, or a query once it is deleted."""
    version_cls = version_class(cls)
    record = session.get(cls, key)
    if record is not None:
        versions = record.versions.all()  # type: ignore[attr-defined]
    else:
        versions = session.scalars(
            sa.select(version_cls).filter_by(id=key).order_by(version_cls.transaction_id)
        ).all()
    # Each version's own class: an invoice's versions hold the invoice table's columns too.
    return [
        {prop.key: getattr(v, prop.key) for prop in sa.inspect(type(v)).column_attrs}
        for v in versions
    ]


def _history(engine: sa.Engine, records: list[Record]) -> dict[Record, list[dict[str, Any]]]:
    """The versions of ``records``, with transaction ids numbered in order from 1."""
    with Session(engine) as session:
        found = {record: _versions(session, *record) for record in records}
    ids = sorted(
        {
            v[name]
            for versions in found.values()
            for v in versions
            for name in ("transaction_id", "end_transaction_id")
            if v[name] is not None
        }
    )
    number = {tx: i for i, tx in enumerate(ids, 1)}
    for versions in found.values():
        for v in versions:
            v["transaction_id"] = number[v["transaction_id"]]
            end = v["end_transaction_id"]
            v["end_transaction_id"] = None if end is None else number[end]
    return found


def _assert_invariants(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        assert history_problems(conn) == []


def _same_as_orm(
    engine: sa.Engine,
    shapes: SimpleNamespace,
    seed: list[Any],
    through_orm: Change,
    bulk: Change,
    records: list[Record],
) -> dict[Record, list[dict[str, Any]]]:
    """Run ``seed`` then the change through the ORM, then again as bulk statements in
    ``version`` mode on a fresh schema; both histories of ``records`` must be equal."""
    histories = []
    for change in (through_orm, bulk):
        _fresh(engine, shapes)
        with Session(engine) as session:
            session.add_all([type(obj)(**_columns(obj)) for obj in seed])
            session.commit()
        install_bulk_write_guard("raise" if change is through_orm else "version")
        try:
            with Session(engine) as session:
                change(session)
                session.commit()
        finally:
            install_bulk_write_guard("warn")
        _assert_invariants(engine)
        histories.append(_history(engine, records))
    orm_history, bulk_history = histories
    assert bulk_history == orm_history
    return bulk_history


def _columns(obj: Any) -> dict[str, Any]:
    mapper = sa.inspect(type(obj))
    return {
        prop.key: getattr(obj, prop.key) for prop in mapper.column_attrs if prop.key in obj.__dict__
    }


def _operations(history: list[dict[str, Any]]) -> list[int]:
    return [v["operation_type"] for v in history]


# --- UPDATEs that change the primary key ----------------------------------------------


def test_key_changing_update_is_a_delete_and_an_insert(
    shape_engine: sa.Engine, shapes: SimpleNamespace
) -> None:
    release = shapes.Release
    seed = [release(id=key, version=f"1.{key}", notes="n") for key in (1, 2, 3)]

    def through_orm(session: Session) -> None:
        for key in (1, 2):
            old = session.get(release, key)
            session.delete(old)
            session.add(release(id=key + 1000, version=old.version, notes=old.notes))

    def bulk(session: Session) -> None:
        session.execute(
            sa.update(release).where(release.id.in_([1, 2])).values(id=release.id + 1000)
        )

    records = [(release, key) for key in (1, 2, 3, 1001, 1002)]
    history = _same_as_orm(shape_engine, shapes, seed, through_orm, bulk, records)
    assert _operations(history[(release, 1)]) == [INSERT, DELETE]
    assert _operations(history[(release, 1001)]) == [INSERT]
    assert history[(release, 1001)][0]["version"] == "1.1"
    assert _operations(history[(release, 3)]) == [INSERT]


def test_key_changing_update_that_moves_some_rows_and_edits_others(
    shape_engine: sa.Engine, shapes: SimpleNamespace
) -> None:
    release = shapes.Release
    seed = [release(id=key, version=f"1.{key}") for key in (1, 2)]

    def through_orm(session: Session) -> None:
        moved = session.get(release, 1)
        session.delete(moved)
        session.add(release(id=1001, version="2.0"))
        session.get(release, 2).version = "2.0"

    def bulk(session: Session) -> None:
        session.execute(
            sa.update(release)
            .where(release.id.in_([1, 2]))
            .values(id=sa.case((release.id == 1, 1001), else_=release.id), version="2.0")
        )

    records = [(release, key) for key in (1, 2, 1001)]
    history = _same_as_orm(shape_engine, shapes, seed, through_orm, bulk, records)
    assert _operations(history[(release, 2)]) == [INSERT, UPDATE]


def test_key_freed_and_taken_again_in_one_transaction_is_an_update(
    shape_engine: sa.Engine, shapes: SimpleNamespace
) -> None:
    release = shapes.Release
    seed = [release(id=1, version="a"), release(id=2, version="b")]

    def through_orm(session: Session) -> None:
        session.delete(session.get(release, 1))
        session.add(release(id=1001, version="a"))
        session.flush()
        session.delete(session.get(release, 2))
        session.add(release(id=1, version="b"))

    def bulk(session: Session) -> None:
        session.execute(sa.update(release).where(release.id == 1).values(id=1001))
        session.execute(sa.update(release).where(release.id == 2).values(id=1))

    records = [(release, key) for key in (1, 2, 1001)]
    history = _same_as_orm(shape_engine, shapes, seed, through_orm, bulk, records)
    assert _operations(history[(release, 1)]) == [INSERT, UPDATE]
    assert history[(release, 1)][-1]["version"] == "b"


def test_key_changing_update_in_a_joined_hierarchy_is_refused(
    shape_engine: sa.Engine, shapes: SimpleNamespace, version_mode: None
) -> None:
    with Session(shape_engine) as session:
        session.add(shapes.Invoice(id=1, title="t", amount=5))
        session.commit()
        statement = sa.update(shapes.Document).values(id=shapes.Document.id + 1)
        with pytest.raises(UnversionedWriteError) as caught:
            session.execute(statement)
        assert str(caught.value) == JOINED_KEY_MESSAGE.format(model="ShapeDocument")
        session.rollback()
        assert sorted(session.scalars(sa.select(shapes.Document.id))) == [1]
    _assert_invariants(shape_engine)


# --- joined-table inheritance ---------------------------------------------------------


def _documents(shapes: SimpleNamespace) -> list[Any]:
    return [
        shapes.Document(id=1, title="plain"),
        shapes.Invoice(id=2, title="bill", amount=10),
        shapes.CreditNote(id=3, title="refund", amount=7, reason="damaged"),
    ]


def test_update_on_a_joined_base_versions_every_table_of_each_row(
    shape_engine: sa.Engine, shapes: SimpleNamespace
) -> None:
    document = shapes.Document

    def through_orm(session: Session) -> None:
        for key in (1, 2, 3):
            session.get(document, key).title = "renamed"

    def bulk(session: Session) -> None:
        session.execute(sa.update(document).values(title="renamed"))

    records = [(document, key) for key in (1, 2, 3)]
    history = _same_as_orm(shape_engine, shapes, _documents(shapes), through_orm, bulk, records)
    assert [v["amount"] for v in history[(document, 3)]] == [7, 7]
    assert [v["reason"] for v in history[(document, 3)]] == ["damaged", "damaged"]


def test_update_on_a_joined_subclass_versions_its_parent_tables_too(
    shape_engine: sa.Engine, shapes: SimpleNamespace
) -> None:
    invoice = shapes.Invoice

    def through_orm(session: Session) -> None:
        for key in (2, 3):
            session.get(invoice, key).amount += 1

    def bulk(session: Session) -> None:
        session.execute(
            sa.update(invoice).where(invoice.amount > 5).values(amount=invoice.amount + 1)
        )

    records = [(shapes.Document, key) for key in (1, 2, 3)]
    history = _same_as_orm(shape_engine, shapes, _documents(shapes), through_orm, bulk, records)
    assert [v["amount"] for v in history[(shapes.Document, 2)]] == [10, 11]
    assert _operations(history[(shapes.Document, 1)]) == [INSERT]


def test_bulk_update_by_primary_key_on_a_joined_base(
    shape_engine: sa.Engine, shapes: SimpleNamespace
) -> None:
    document = shapes.Document

    def through_orm(session: Session) -> None:
        for key in (1, 3):
            session.get(document, key).title = f"t{key}"

    def bulk(session: Session) -> None:
        session.execute(sa.update(document), [{"id": key, "title": f"t{key}"} for key in (1, 3)])

    records = [(document, key) for key in (1, 2, 3)]
    _same_as_orm(shape_engine, shapes, _documents(shapes), through_orm, bulk, records)


def test_delete_on_a_joined_base_deletes_each_rows_whole_history(
    shape_engine: sa.Engine, shapes: SimpleNamespace
) -> None:
    document = shapes.Document

    def through_orm(session: Session) -> None:
        # Loaded as their own classes: Continuum reads every column of a deleted object,
        # and a subclass column not loaded yet can no longer be loaded after the flush.
        for cls, key in ((document, 1), (shapes.CreditNote, 3)):
            session.delete(session.get(cls, key))

    def bulk(session: Session) -> None:
        # The foreign keys cascade: the database deletes the child rows.
        session.execute(sa.delete(document).where(document.id.in_([1, 3])))

    records = [(document, key) for key in (1, 2, 3)]
    history = _same_as_orm(shape_engine, shapes, _documents(shapes), through_orm, bulk, records)
    assert _operations(history[(document, 3)]) == [INSERT, DELETE]
    assert history[(document, 3)][-1]["reason"] == "damaged"


def test_delete_on_a_joined_subclass_is_refused(
    shape_engine: sa.Engine, shapes: SimpleNamespace, version_mode: None
) -> None:
    with Session(shape_engine) as session:
        session.add_all(_documents(shapes))
        session.commit()
        with pytest.raises(UnversionedWriteError) as caught:
            session.execute(sa.delete(shapes.Invoice).where(shapes.Invoice.id == 2))
        assert str(caught.value) == JOINED_DELETE_MESSAGE.format(
            model="ShapeInvoice", table="shape_invoice", base="ShapeDocument"
        )
        session.rollback()
        assert sorted(session.scalars(sa.select(shapes.Document.id))) == [1, 2, 3]
        assert sorted(session.scalars(sa.select(shapes.Invoice.id))) == [2, 3]
    _assert_invariants(shape_engine)


def test_delete_on_a_joined_base_whose_child_rows_would_stay_is_refused(
    shape_engine: sa.Engine, shapes: SimpleNamespace, version_mode: None
) -> None:
    with Session(shape_engine) as session:
        session.add_all([shapes.Memo(id=4, title="memo", body="b"), *_documents(shapes)])
        session.commit()
        with pytest.raises(UnversionedWriteError) as caught:
            session.execute(sa.delete(shapes.Document).where(shapes.Document.id >= 3))
        assert str(caught.value) == UNCASCADED_DELETE_MESSAGE.format(
            model="ShapeDocument", subclass="ShapeMemo", table="shape_memo"
        )
        session.rollback()
        assert sorted(session.scalars(sa.select(shapes.Document.id))) == [1, 2, 3, 4]
    _assert_invariants(shape_engine)


def test_bulk_insert_into_a_joined_subclass_with_keys(
    shape_engine: sa.Engine, shapes: SimpleNamespace
) -> None:
    invoice = shapes.Invoice
    rows = [{"id": key, "title": f"i{key}", "amount": key} for key in (5, 6)]

    def through_orm(session: Session) -> None:
        session.add_all([invoice(**row) for row in rows])

    def bulk(session: Session) -> None:
        session.execute(sa.insert(invoice), rows)

    records = [(shapes.Document, key) for key in (1, 5, 6)]
    _same_as_orm(shape_engine, shapes, _documents(shapes), through_orm, bulk, records)


def test_bulk_insert_into_a_joined_subclass_without_keys_is_refused(
    shape_engine: sa.Engine, shapes: SimpleNamespace, version_mode: None
) -> None:
    with Session(shape_engine) as session:
        with pytest.raises(UnversionedWriteError) as caught:
            session.execute(sa.insert(shapes.Invoice), [{"title": "t", "amount": 1}])
        assert str(caught.value) == JOINED_INSERT_MESSAGE.format(model="ShapeInvoice")
        session.rollback()
        assert sorted(session.scalars(sa.select(shapes.Document.id))) == []


def test_joined_hierarchy_without_polymorphic_on(
    shape_engine: sa.Engine, shapes: SimpleNamespace
) -> None:
    note, sticky = shapes.Note, shapes.Sticky
    seed = [note(id=1, text="plain"), sticky(id=2, text="sticky", color="yellow")]

    def through_orm(session: Session) -> None:
        session.get(sticky, 2).color = "red"

    def bulk(session: Session) -> None:
        # The subclass's own statement: every row it matches is a ShapeSticky.
        session.execute(sa.update(sticky).values(color="red"))
        # Through the base, which rows are stickies cannot be told: refused.
        with pytest.raises(UnversionedWriteError) as caught:
            session.execute(sa.update(note).values(text="x"))
        assert str(caught.value) == UNTYPED_MESSAGE.format(operation="UPDATE", model="ShapeNote")

    records = [(note, 1), (sticky, 2)]
    _same_as_orm(shape_engine, shapes, seed, through_orm, bulk, records)
    # Without polymorphic loading, versions are the base's: read the subclass's table.
    sticky_version = version_class(sticky).__table__
    with shape_engine.connect() as conn:
        colors = conn.scalars(
            sa.select(sticky_version.c.color).order_by(sticky_version.c.transaction_id)
        ).all()
    assert colors == ["yellow", "red"]


# --- single-table inheritance ---------------------------------------------------------


def _parties(shapes: SimpleNamespace) -> list[Any]:
    return [
        shapes.Person(id=1, name="ada", born=1815),
        shapes.Company(id=2, name="acme", vat="X1"),
        shapes.Person(id=3, name="alan", born=1912),
    ]


def test_update_on_a_single_table_subclass_versions_only_its_rows(
    shape_engine: sa.Engine, shapes: SimpleNamespace
) -> None:
    person = shapes.Person

    def through_orm(session: Session) -> None:
        for key in (1, 3):
            session.get(person, key).name = "renamed"

    def bulk(session: Session) -> None:
        session.execute(sa.update(person).values(name="renamed"))

    records = [(shapes.Party, key) for key in (1, 2, 3)]
    history = _same_as_orm(shape_engine, shapes, _parties(shapes), through_orm, bulk, records)
    assert _operations(history[(shapes.Party, 2)]) == [INSERT]


def test_delete_on_a_single_table_subclass_versions_only_its_rows(
    shape_engine: sa.Engine, shapes: SimpleNamespace
) -> None:
    person = shapes.Person

    def through_orm(session: Session) -> None:
        for key in (1, 3):
            session.delete(session.get(person, key))

    def bulk(session: Session) -> None:
        session.execute(sa.delete(person))

    records = [(shapes.Party, key) for key in (1, 2, 3)]
    history = _same_as_orm(shape_engine, shapes, _parties(shapes), through_orm, bulk, records)
    assert _operations(history[(shapes.Party, 2)]) == [INSERT]
    assert _operations(history[(shapes.Party, 3)]) == [INSERT, DELETE]


def test_update_on_a_single_table_base_and_a_key_change(
    shape_engine: sa.Engine, shapes: SimpleNamespace
) -> None:
    party = shapes.Party

    def through_orm(session: Session) -> None:
        for key in (1, 2, 3):
            session.get(party, key).name = "all"
        company = session.get(party, 2)
        session.flush()
        session.delete(company)
        session.add(shapes.Company(id=20, name="all", vat="X1"))

    def bulk(session: Session) -> None:
        session.execute(sa.update(party).values(name="all"))
        session.execute(sa.update(party).where(party.id == 2).values(id=20))

    records = [(party, key) for key in (1, 2, 3, 20)]
    _same_as_orm(shape_engine, shapes, _parties(shapes), through_orm, bulk, records)
