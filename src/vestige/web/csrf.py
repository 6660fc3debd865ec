"""Cross-site request forgery: every POST carries the token of its browser's cookie.

A double-submit token: the first page a browser gets sets a random token in a
``SameSite=Strict``, ``HttpOnly`` cookie, and every form carries the same token in a
hidden field. A POST is accepted only when the two are present and equal and, when the
browser says where the request comes from (``Origin``), it comes from this site. Another
site can make a browser send the cookie, but cannot read it to fill in the form.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

__all__ = ["CSRF_COOKIE", "CSRF_FIELD", "csrf_token", "remember_token", "valid_post"]

CSRF_COOKIE = "vestige_csrf"
CSRF_FIELD = "csrf_token"


def csrf_token(request: Request) -> str:
    """The browser's token, or a new one for :func:`remember_token` to set."""
    token = request.cookies.get(CSRF_COOKIE)
    if token and len(token) == 43:
        return token
    found = getattr(request.state, "new_csrf_token", None)
    if found is None:
        found = request.state.new_csrf_token = secrets.token_urlsafe(32)
    return str(found)


def remember_token(request: Request, response: Response) -> None:
    """Set the cookie when this response handed out a new token."""
    token = getattr(request.state, "new_csrf_token", None)
    if token is not None:
        path = request.scope.get("root_path") or "/"
        response.set_cookie(
            CSRF_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path=path,
        )


def valid_post(request: Request, form: Mapping[str, object]) -> bool:
    """Whether a POST carries its browser's token and comes from this site."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = form.get(CSRF_FIELD)
    if not cookie or not isinstance(sent, str) or not sent:
        return False
    if not hmac.compare_digest(cookie.encode(), sent.encode()):
        return False
    origin = request.headers.get("origin")
    if origin is not None:
        host = request.headers.get("host", "")
        return urlsplit(origin).netloc == host
    return True
