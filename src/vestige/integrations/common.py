"""What every integration shares: the request id, and a user's id from a user object."""

from __future__ import annotations

import re
import uuid
from typing import Any

__all__ = ["REQUEST_ID_HEADER", "new_request_id", "request_id_from", "user_key"]

REQUEST_ID_HEADER = "X-Request-ID"
"""The header a request id is read from (and echoed in), as proxies and tracers send it."""

_SAFE_ID = re.compile(r"[A-Za-z0-9._:/+=@-]{1,200}")


def new_request_id() -> str:
    """A fresh request id: 32 hex digits."""
    return uuid.uuid4().hex


def request_id_from(header: str | None) -> str:
    """The request id a client or proxy sent, if it is a plausible one; else a fresh one.

    A plausible id is 1-200 characters of letters, digits and ``._:/+=@-``: anything
    else (spaces, control characters, a megabyte) is replaced rather than stored.
    """
    if header is not None and _SAFE_ID.fullmatch(header.strip()):
        return header.strip()
    return new_request_id()


def user_key(user: Any) -> Any:
    """The id to record for a user object, or ``None`` for nobody.

    Understands the common shapes: ``None``; an anonymous user (``is_authenticated`` false:
    Flask-Login, Starlette); an object with ``id`` (an ORM model); ``get_id()``
    (Flask-Login's ``UserMixin``); ``identity`` (Starlette's ``BaseUser``). Plain ids
    (``int``, ``str``, ``uuid.UUID``) are returned as they are.
    """
    if user is None or isinstance(user, int | str | uuid.UUID):
        return None if isinstance(user, bool) else user
    if getattr(user, "is_authenticated", True) is False:
        return None
    for name in ("id", "get_id", "identity"):
        try:
            value = getattr(user, name, None)
            if callable(value):
                value = value()
        except NotImplementedError:  # Starlette's BaseUser.identity
            continue
        if value is not None:
            return value
    return None
