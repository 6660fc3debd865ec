"""Parsing and presenting history without a database: keys, moments, values, labels."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import models
from vestige.cli import app
from vestige.cli.parsing import BAD_KEY, BAD_USER, BAD_WHEN, parse_key, parse_user, parse_when, show
from vestige.errors import ConfigError
from vestige.history import Change, Operation, Version, diff, label_attribute
from vestige.history.queries import normalize_key
from vestige.history.reading import record_label


class _Base(DeclarativeBase):
    pass


class Mirror(_Base):
    """A plain model with a composite key (not versioned: parsing needs only the mapper)."""

    __tablename__ = "mirror"
    region: Mapped[str] = mapped_column(sa.String(10), primary_key=True)
    slot: Mapped[int] = mapped_column(primary_key=True)


def test_parse_key_converts_to_the_key_type() -> None:
    assert parse_key(models.Package, "7") == (7,)
    assert parse_key(models.Package, " 7 ") == (7,)
    assert parse_key(Mirror, "eu, 3") == ("eu", 3)


@pytest.mark.parametrize(
    ("model", "text", "expected"),
    [
        (models.Package, "seven", "id (int)"),
        (models.Package, "", "id (int)"),
        (Mirror, "eu", "region (str), slot (int)"),
        (Mirror, "eu,x", "region (str), slot (int)"),
    ],
)
def test_parse_key_rejects_what_does_not_fit(model: type, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_key(model, text)
    assert str(raised.value) == BAD_KEY.format(text=text, model=model.__name__, expected=expected)


def test_parse_when_reads_transaction_ids_and_iso_times() -> None:
    assert parse_when("42") == 42
    assert parse_when("2026-01-31T12:00:00") == datetime(2026, 1, 31, 12)
    assert parse_when("2026-01-31 12:00") == datetime(2026, 1, 31, 12)
    aware = parse_when("2026-01-31T13:00:00+01:00")
    assert isinstance(aware, datetime)
    assert aware.astimezone(UTC) == datetime(2026, 1, 31, 12, tzinfo=UTC)
    for text in ("yesterday", "-3", "2026-13-01"):
        with pytest.raises(ConfigError) as raised:
            parse_when(text)
        assert str(raised.value) == BAD_WHEN.format(text=text)


def test_parse_user_uses_the_user_id_type() -> None:
    assert parse_user(" 3 ") == 3
    with pytest.raises(ConfigError) as raised:
        parse_user("ann")
    assert str(raised.value) == BAD_USER.format(text="ann")


def test_show_quotes_strings_and_trims_times() -> None:
    assert show("HTTP") == "'HTTP'"
    assert show(None) == "None"
    assert show(3) == "3"
    assert show(datetime(2026, 1, 1, 9, 0, 1, 123456)) == "2026-01-01 09:00:01"


def test_normalize_key_accepts_a_value_a_tuple_or_a_mapping() -> None:
    assert normalize_key(models.Package, 5) == (5,)
    assert normalize_key(models.Package, (5,)) == (5,)
    assert normalize_key(Mirror, {"slot": 2, "region": "eu"}) == ("eu", 2)
    assert record_label(Mirror, ("eu", 2)) == "Mirror eu,2"
    with pytest.raises(ConfigError, match="expected region, slot"):
        normalize_key(Mirror, {"region": "eu"})
    with pytest.raises(ConfigError, match="expected region, slot"):
        normalize_key(Mirror, "eu")


def version(key: int, tx: int, **values: object) -> Version:
    return Version(
        model=models.Package,
        key=(key,),
        transaction_id=tx,
        end_transaction_id=None,
        issued_at=datetime(2026, 1, 1),
        user_id=None,
        user="",
        remote_addr=None,
        operation=Operation.UPDATE,
        values=values,
    )


def test_diff_compares_every_column_of_two_versions() -> None:
    old = version(1, 2, summary="a", homepage=None, name="x")
    new = version(1, 9, summary="b", homepage="h", name="x")
    assert diff(old, new) == [Change("summary", "a", "b"), Change("homepage", None, "h")]
    assert diff(new, new) == []
    with pytest.raises(ConfigError, match="different records: Package 1 and Package 2"):
        diff(old, version(2, 9, summary="b"))


def test_operation_types() -> None:
    assert [Operation.from_type(t) for t in (0, 1, 2)] == ["insert", "update", "delete"]


class _ByName(_Base):
    __tablename__ = "by_name"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str]
    name: Mapped[str]


class _ByEmail(_Base):
    __tablename__ = "by_email"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str]


class _Anonymous(_Base):
    __tablename__ = "anonymous"
    id: Mapped[int] = mapped_column(primary_key=True)


def test_label_attribute_prefers_username_then_name_then_email() -> None:
    assert label_attribute(models.Maintainer) == "username"
    assert label_attribute(_ByName) == "name"
    assert label_attribute(_ByEmail) == "email"
    assert label_attribute(_Anonymous) is None


@pytest.mark.parametrize("command", ["history", "restore"])
def test_commands_have_help_with_an_example(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert f"vestige {command} Package 1" in result.stdout
