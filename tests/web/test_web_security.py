"""The history browser's guards: who may read or restore, CSRF on every POST, and no
password on any page or error; on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.testclient import TestClient

import models
from tests.support.web_data import WebHistory, write_web_history
from tests.support.web_pages import form_fields, get_ok, text_of
from vestige.web import Permission, create_app
from vestige.web.csrf import CSRF_COOKIE, CSRF_FIELD

PASSWORD = "s3cret-pw-never-shown"
PAGES = (
    "/",
    "/models/Package",
    "/models/Release/deleted",
    "/models/Package/record?key.id=1",
    "/models/Package/diff?key.id=1&a=2&b=3",
    "/models/Package/as-of?key.id=1&at=3",
    "/transactions/3",
    "/search",
)


@pytest.fixture
def database(db_url: str) -> Iterator[tuple[sa.Engine, WebHistory]]:
    engine = sa.create_engine(db_url)
    models.Base.metadata.create_all(engine)
    data = write_web_history(engine, many=3)
    yield engine, data
    engine.dispose()


def client(
    engine: sa.Engine, authorize: Callable[[Request, Permission], bool], restore: bool = True
) -> TestClient:
    return TestClient(create_app(engine, authorize=authorize, allow_restore=restore))


def releases(engine: sa.Engine) -> list[tuple[int, str]]:
    with Session(engine) as session:
        return [
            tuple(row)
            for row in session.execute(sa.select(models.Release.id, models.Release.version))
        ]


def test_mounting_needs_an_authorize_callable(database: tuple[sa.Engine, WebHistory]) -> None:
    engine, _ = database
    with pytest.raises(TypeError):
        create_app(engine)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="authorize"):
        create_app(engine, authorize=None)  # type: ignore[arg-type]


def test_nobody_reads_what_authorize_refuses(database: tuple[sa.Engine, WebHistory]) -> None:
    engine, _ = database
    asked: list[Permission] = []

    def nobody(request: Request, permission: Permission) -> bool:
        asked.append(permission)
        return False

    with client(engine, nobody) as browser:
        for page in PAGES:
            response = browser.get(page)
            assert response.status_code == 403, page
            assert "you may not read here" in text_of(response.text)
            assert "httpkit" not in response.text
    assert set(asked) == {Permission.READ}


def test_readers_may_not_restore(database: tuple[sa.Engine, WebHistory]) -> None:
    engine, data = database
    before = releases(engine)

    def readers(request: Request, permission: Permission) -> bool:
        return permission is Permission.READ

    with client(engine, readers) as browser:
        get_ok(browser, "/models/Release/deleted")
        plan = browser.get(f"/models/Release/restore?key.id={data.deleted_release}")
        assert plan.status_code == 403
        assert "you may not restore here" in text_of(plan.text)
        token = browser.cookies[CSRF_COOKIE]
        posted = browser.post(
            "/models/Release/restore",
            data={CSRF_FIELD: token, "key.id": str(data.deleted_release), "to": "1", "digest": "x"},
        )
        assert posted.status_code == 403
    assert releases(engine) == before


def test_restore_is_off_unless_allowed(database: tuple[sa.Engine, WebHistory]) -> None:
    engine, data = database
    with client(engine, lambda request, permission: True, restore=False) as browser:
        deleted = get_ok(browser, "/models/Release/deleted")
        assert "Preview undelete" not in deleted
        assert "Restore…" not in get_ok(browser, f"/models/Package/record?key.id={data.demo}")
        response = browser.get(f"/models/Release/restore?key.id={data.deleted_release}")
        assert response.status_code == 403
        assert "restoring from the browser is off" in text_of(response.text)


def test_a_post_without_its_csrf_token_writes_nothing(
    database: tuple[sa.Engine, WebHistory],
) -> None:
    engine, data = database
    before = releases(engine)
    for forgery in ("no token", "wrong token", "no cookie", "other origin", "null origin"):
        with client(engine, lambda request, permission: True) as browser:
            plan = get_ok(browser, f"/models/Release/restore?key.id={data.deleted_release}")
            fields = form_fields(plan)
            headers = {}
            if forgery == "no token":
                del fields[CSRF_FIELD]
            elif forgery == "wrong token":
                fields[CSRF_FIELD] = "A" * 43
            elif forgery == "no cookie":
                browser.cookies.clear()
            else:
                headers["Origin"] = "http://attacker.example" if "other" in forgery else "null"
            response = browser.post("/models/Release/restore", data=fields, headers=headers)
            assert response.status_code == 403, forgery
            assert "CSRF token does not match" in text_of(response.text)
        assert releases(engine) == before, forgery
    # the same form, sent as it was made, goes through
    with client(engine, lambda request, permission: True) as browser:
        plan = get_ok(browser, f"/models/Release/restore?key.id={data.deleted_release}")
        fields = form_fields(plan)
        response = browser.post(
            "/models/Release/restore", data=fields, headers={"Origin": "http://testserver"}
        )
        assert response.status_code == 200
    assert len(releases(engine)) == len(before) + 1


def test_the_csrf_cookie_is_strict_and_hidden_from_scripts(
    database: tuple[sa.Engine, WebHistory],
) -> None:
    engine, _ = database
    with client(engine, lambda request, permission: True) as browser:
        cookie = browser.get("/").headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie


def test_no_password_on_any_page_or_error(db_url: str, backend: str) -> None:
    url = sa.make_url(db_url)
    if backend == "postgresql":
        url = url.set(password=PASSWORD)  # the test server trusts, and ignores it
    engine = sa.create_engine(url)
    models.Base.metadata.create_all(engine)
    write_web_history(engine, many=3)
    with client(engine, lambda request, permission: True) as browser:
        bodies = [get_ok(browser, page) for page in PAGES]
        with engine.begin() as connection:
            connection.execute(sa.text("DROP TABLE release_version"))
        broken = browser.get("/models/Release")
        assert broken.status_code == 500
        assert "the database refused the query" in text_of(broken.text)
        assert "release_version" in text_of(broken.text)
        bodies.append(broken.text)
    engine.dispose()
    for body in bodies:
        assert PASSWORD not in body
        assert "Traceback" not in body
