"""WSGI middleware: a change context for every request of any WSGI application.

::

    from vestige.integrations import VestigeWSGIMiddleware

    application = VestigeWSGIMiddleware(application)

By default the user is ``REMOTE_USER`` (set by the server or an authentication
middleware outside this one), the address ``REMOTE_ADDR``, and the request id the
``X-Request-ID`` header or a fresh one, echoed in the response. Each can be replaced by
a callable taking the WSGI ``environ``. The context covers the application call, where
a WSGI application does its writing; a response body generated lazily after it returns
runs outside it. For Flask, :class:`vestige.integrations.flask.Vestige` knows
Flask-Login's ``current_user``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from vestige.integrations.common import REQUEST_ID_HEADER, request_id_from
from vestige.versioning.change_context import context

__all__ = ["VestigeWSGIMiddleware"]

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]


class VestigeWSGIMiddleware:
    """Records the change context of each WSGI request; see the module.

    Args:
        app: The WSGI application to wrap.
        user: ``environ -> user id``; default: ``REMOTE_USER``.
        remote_addr: ``environ -> address``; default: ``REMOTE_ADDR``.
        request_id: ``environ -> id``; default: the request id header, else a fresh one.
        extra: ``environ -> {name: JSON value}``, recorded beside the rest.
        header: The request id header to read and echo.
        echo_request_id: Send the request id back in the response header.
    """

    def __init__(
        self,
        app: WSGIApp,
        *,
        user: Callable[[Environ], Any] | None = None,
        remote_addr: Callable[[Environ], str | None] | None = None,
        request_id: Callable[[Environ], str | None] | None = None,
        extra: Callable[[Environ], Mapping[str, Any]] | None = None,
        header: str = REQUEST_ID_HEADER,
        echo_request_id: bool = True,
    ) -> None:
        self.app = app
        self.user = user or (lambda environ: environ.get("REMOTE_USER") or None)
        self.remote_addr = remote_addr or (lambda environ: environ.get("REMOTE_ADDR") or None)
        self.request_id = request_id
        self.extra = extra
        self.header = header
        self.environ_key = "HTTP_" + header.upper().replace("-", "_")
        self.echo_request_id = echo_request_id

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        found = self.request_id(environ) if self.request_id is not None else None
        request_id = found or request_id_from(environ.get(self.environ_key))
        extra = dict(self.extra(environ)) if self.extra is not None else {}

        def start_with_id(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
            if self.echo_request_id and not any(
                name.lower() == self.header.lower() for name, _ in headers
            ):
                headers = [*headers, (self.header, request_id)]
            return start_response(status, headers, *args)

        with context(
            user=self.user(environ),
            remote_addr=self.remote_addr(environ),
            request_id=request_id,
            **extra,
        ):
            return self.app(environ, start_with_id)
