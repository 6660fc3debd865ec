"""What every page of the history browser shares: who may do what, and rendering.

:class:`Browser` holds the engine, the ``authorize`` callable and the templates;
:func:`require` asks ``authorize`` before a page reads or a restore writes;
:func:`render` fills a template and hands out the CSRF token its forms carry.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from vestige.web.csrf import csrf_token, remember_token

__all__ = [
    "FORBIDDEN",
    "RESTORE_OFF",
    "Authorize",
    "Browser",
    "Permission",
    "browser_of",
    "render",
    "require",
]

FORBIDDEN = "you may not {what} here; ask whoever runs this history browser for access"
RESTORE_OFF = (
    "restoring from the browser is off; start it with `vestige serve --allow-restore` "
    "or create_app(..., allow_restore=True)"
)


class Permission(enum.StrEnum):
    """What a request asks to do."""

    READ = "read"
    RESTORE = "restore"


#: ``authorize(request, permission)``: whether this request may read, or restore.
Authorize = Callable[[Request, Permission], bool]


@dataclass(frozen=True)
class Browser:
    """What every page needs: the database, who may do what, and the page size."""

    engine: sa.Engine
    authorize: Authorize
    allow_restore: bool
    page_size: int
    templates: Jinja2Templates

    @contextmanager
    def reading(self) -> Iterator[orm.Session]:
        """A session for one page; whatever it did is rolled back."""
        with orm.Session(self.engine) as session:
            try:
                yield session
            finally:
                session.rollback()

    def may_restore(self, request: Request) -> bool:
        return self.allow_restore and self.authorize(request, Permission.RESTORE)


def browser_of(request: Request) -> Browser:
    """The browser's settings, from the application that serves ``request``."""
    found: Browser = request.app.state.vestige_browser
    return found


def require(request: Request, permission: Permission) -> Browser:
    """The browser's settings, once ``authorize`` allowed this request.

    Raises:
        HTTPException: 403, it did not (or restoring is off).
    """
    browser = browser_of(request)
    if permission is Permission.RESTORE and not browser.allow_restore:
        raise HTTPException(403, RESTORE_OFF)
    if not browser.authorize(request, permission):
        raise HTTPException(403, FORBIDDEN.format(what=permission.value))
    return browser


def render(
    request: Request, template: str, context: Mapping[str, Any], status_code: int = 200
) -> Response:
    """A page from a template, with the CSRF token its forms need."""
    browser = browser_of(request)
    response = browser.templates.TemplateResponse(
        request,
        template,
        {
            **context,
            "csrf_token": csrf_token(request),
            "may_restore": browser.allow_restore,
        },
        status_code=status_code,
    )
    remember_token(request, response)
    return response
