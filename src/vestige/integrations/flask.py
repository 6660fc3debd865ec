"""A Flask extension: a change context for every request, with Flask-Login's user.

::

    from vestige.integrations.flask import Vestige

    vestige = Vestige(app)            # or Vestige() and vestige.init_app(app)

Every transaction a request writes records, by default:

- ``user``: Flask-Login's ``current_user`` (its ``id``, else ``get_id()``) when
  Flask-Login is installed and set up on the app; nobody for an anonymous user;
- ``remote_addr``: ``request.remote_addr`` (put Werkzeug's ``ProxyFix`` in front behind a
  proxy);
- ``request_id``: the ``X-Request-ID`` header if it looks like one, else a fresh id,
  echoed in the response.

Each can be replaced by any callable taking no arguments, called inside the request
(it can use ``flask.request``, ``flask.g``, ``current_user``), and ``extra`` adds
values of its own. The context is entered in ``before_request`` (so it sees what
earlier ``before_request`` functions, such as your own authentication, set) and left in
``teardown_request``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import ExitStack
from typing import Any

import flask

from vestige.integrations.common import REQUEST_ID_HEADER, request_id_from, user_key
from vestige.versioning.change_context import context, current_context

__all__ = ["Vestige", "flask_login_user"]

_STACK = "_vestige_context"


def flask_login_user() -> Any:
    """The id of Flask-Login's ``current_user``; ``None`` without Flask-Login, or when
    nobody is logged in."""
    if getattr(flask.current_app, "login_manager", None) is None:
        return None
    from flask_login import current_user

    return user_key(current_user._get_current_object())


class Vestige:
    """The extension; see the module.

    Args:
        app: The Flask application (or ``None``, then :meth:`init_app`).
        user: ``() -> user id``; default: :func:`flask_login_user`.
        remote_addr: ``() -> address``; default: ``request.remote_addr``.
        request_id: ``() -> id``; default: the request id header, else a fresh one.
        extra: ``() -> {name: JSON value}``, recorded beside the rest.
        header: The request id header to read and echo.
        echo_request_id: Send the request id back in the response header.
    """

    def __init__(
        self,
        app: flask.Flask | None = None,
        *,
        user: Callable[[], Any] | None = None,
        remote_addr: Callable[[], str | None] | None = None,
        request_id: Callable[[], str | None] | None = None,
        extra: Callable[[], Mapping[str, Any]] | None = None,
        header: str = REQUEST_ID_HEADER,
        echo_request_id: bool = True,
    ) -> None:
        self.user = user or flask_login_user
        self.remote_addr = remote_addr or (lambda: flask.request.remote_addr)
        self.request_id = request_id
        self.extra = extra
        self.header = header
        self.echo_request_id = echo_request_id
        if app is not None:
            self.init_app(app)

    def init_app(self, app: flask.Flask) -> None:
        """Install the request hooks on ``app``."""
        app.extensions["vestige"] = self
        app.before_request(self._enter)
        app.after_request(self._echo)
        app.teardown_request(self._leave)

    def _enter(self) -> None:
        found = self.request_id() if self.request_id is not None else None
        request_id = found or request_id_from(flask.request.headers.get(self.header))
        extra = dict(self.extra()) if self.extra is not None else {}
        stack = ExitStack()
        stack.enter_context(
            context(
                user=self.user(),
                remote_addr=self.remote_addr(),
                request_id=request_id,
                **extra,
            )
        )
        setattr(flask.g, _STACK, stack)

    def _echo(self, response: flask.Response) -> flask.Response:
        stack = getattr(flask.g, _STACK, None)
        if self.echo_request_id and stack is not None and self.header not in response.headers:
            response.headers[self.header] = current_context().request_id or ""
        return response

    def _leave(self, error: BaseException | None) -> None:
        stack = flask.g.pop(_STACK, None)
        if stack is not None:
            stack.close()
