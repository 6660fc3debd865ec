"""The history browser as an ASGI application: :func:`create_app`.

It is a Starlette application over an engine the caller gives, for models the caller
has imported. Mount it in a FastAPI or Starlette application (``app.mount("/history",
browser)``), in a Flask one through a WSGI adapter, or run it with ``vestige serve``.

Nobody reads anything unless ``authorize(request, Permission.READ)`` says yes, and
nothing is written unless the application was made with ``allow_restore=True`` *and*
``authorize(request, Permission.RESTORE)`` says yes. Every page is read in a
transaction that is rolled back; a restore commits only after the person confirmed the
plan shown to them.
"""

from __future__ import annotations

from typing import Any

import jinja2
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from vestige.errors import ModelNotFound, RecordNotFound, RestoreConflict, VestigeError, first_line
from vestige.web import pages, present, restoring
from vestige.web.context import Authorize, Browser, render
from vestige.web.csrf import CSRF_FIELD

__all__ = ["create_app"]

DATABASE_FAILED = "the database refused the query ({reason}); nothing was changed"
NOT_FOUND = "no such page: {path}"


def create_app(
    engine: sa.Engine,
    *,
    authorize: Authorize,
    allow_restore: bool = False,
    page_size: int = 50,
) -> Starlette:
    """The history browser over ``engine``, for the versioned models already imported.

    Args:
        engine: The application's database.
        authorize: Called with the request and :class:`Permission` before every page
            (``READ``) and before every restore plan or restore (``RESTORE``); return
            ``False`` to answer 403. There is no default: deciding who may see the
            history of every record is the application's call.
        allow_restore: Offer restoring and undeleting records (still subject to
            ``authorize``). Off by default: the browser only reads.
        page_size: Rows per page.

    Example:
        >>> browser = create_app(engine, authorize=lambda request, permission: (
        ...     request.user.is_authenticated and permission is Permission.READ))
        >>> app.mount("/history", browser)
    """
    if not callable(authorize):
        raise TypeError("create_app needs authorize=callable(request, permission) -> bool")
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("vestige.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    environment.globals.update(
        url_for=_path_for,
        show=present.show_value,
        utc_iso=present.utc_iso,
        with_query=present.with_query,
        key_query=present.key_query,
        encode_cursor=present.encode_cursor,
        csrf_field=CSRF_FIELD,
    )
    browser = Browser(
        engine=engine,
        authorize=authorize,
        allow_restore=allow_restore,
        page_size=page_size,
        templates=Jinja2Templates(env=environment),
    )
    routes: list[Route | Mount] = [
        Route("/", pages.models_page, name="models"),
        Route("/models/{model}", pages.model_page, name="model"),
        Route("/models/{model}/deleted", pages.deleted_page, name="deleted"),
        Route("/models/{model}/record", pages.record_page, name="record"),
        Route("/models/{model}/diff", pages.diff_page, name="diff"),
        Route("/models/{model}/as-of", pages.as_of_page, name="as_of"),
        Route("/transactions/{transaction_id:int}", pages.transaction_page, name="transaction"),
        Route("/search", pages.search_page, name="search"),
        Route("/models/{model}/restore", restoring.plan_page, name="restore", methods=["GET"]),
        Route("/models/{model}/restore", restoring.confirm, name="confirm", methods=["POST"]),
        Mount("/static", StaticFiles(packages=[("vestige.web", "static")]), name="static"),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            HTTPException: _http_error,
            VestigeError: _vestige_error,
            sa.exc.DBAPIError: _database_error,
        },
    )
    app.state.vestige_browser = browser
    app.state.vestige_routes = {route.name: route for route in routes}
    return app


@jinja2.pass_context
def _path_for(context: dict[str, Any], name: str, /, **path_params: Any) -> str:
    """A page's address without scheme and host: right behind a proxy, under a mount."""
    request: Request = context["request"]
    # Straight to the named route, once per page and address: the router's own lookup
    # tries every route in turn, and a page of a few hundred links would spend most of
    # its time there.
    known: dict[tuple[Any, ...], str] = request.scope.setdefault("vestige.paths", {})
    key = (name, *sorted(path_params.items()))
    found = known.get(key)
    if found is None:
        route: BaseRoute = request.app.state.vestige_routes[name]
        path = str(route.url_path_for(name, **path_params))
        found = known[key] = f"{request.scope.get('root_path', '')}{path}"
    return found


def _error_page(request: Request, status: int, message: str) -> Response:
    try:
        return render(request, "error.html", {"status": status, "message": message}, status)
    except Exception:  # a broken page must not hide the error behind another
        return HTMLResponse(f"<p>{status}</p>", status_code=status)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = exc.detail if exc.status_code != 404 else NOT_FOUND.format(path=request.url.path)
    return _error_page(request, exc.status_code, message)


async def _vestige_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, VestigeError)
    status = 400
    if isinstance(exc, ModelNotFound | RecordNotFound):
        status = 404
    elif (
        isinstance(exc, RestoreConflict) or not isinstance(exc, VestigeError) or exc.exit_code == 1
    ):
        status = 409
    return _error_page(request, status, str(exc))


async def _database_error(request: Request, exc: Exception) -> Response:
    # The driver's first line names the statement's problem, never the URL or password.
    return _error_page(request, 500, DATABASE_FAILED.format(reason=first_line(exc)))
