"""ASGI middleware: a change context for every HTTP request (Starlette, FastAPI, Litestar).

::

    from vestige.integrations import VestigeMiddleware

    app.add_middleware(VestigeMiddleware)                      # Starlette, FastAPI
    Litestar(..., middleware=[VestigeMiddleware])              # Litestar

Every transaction the request's handlers write records, by default:

- ``user``: the id of ``scope["user"]``, which authentication middleware sets
  (Starlette's ``AuthenticationMiddleware``, Litestar's auth middleware), read with
  :func:`~vestige.integrations.common.user_key`. Add Vestige's middleware *inside* the
  authentication middleware: in Starlette, ``add_middleware`` it first.
- ``remote_addr``: the client's address (``scope["client"]``; behind a proxy, let
  Uvicorn's ``--proxy-headers`` or a proxy-headers middleware rewrite it).
- ``request_id``: the ``X-Request-ID`` header if it looks like one, else a fresh id; it is
  also sent back in the response's ``X-Request-ID`` header.

Each of the three can be replaced by any callable taking the ASGI scope (use
``starlette.requests.Request(scope)`` for a request object), and ``extra`` adds values
of its own (``lambda scope: {"path": scope["path"]}``). The context lives in a context
variable, so it reaches ``async def`` handlers, sync handlers run in the thread pool,
and the sessions they use, sync or async.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from vestige.integrations.common import REQUEST_ID_HEADER, request_id_from, user_key
from vestige.versioning.change_context import context

__all__ = ["VestigeMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _scope_user(scope: Scope) -> Any:
    return user_key(scope.get("user"))


def _scope_client(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


class VestigeMiddleware:
    """Records the change context of each HTTP and WebSocket request; see the module.

    Args:
        app: The ASGI application to wrap.
        user: ``scope -> user id``; default: the id of ``scope["user"]``.
        remote_addr: ``scope -> address``; default: ``scope["client"][0]``.
        request_id: ``scope -> id``; default: the request id header, else a fresh one.
        extra: ``scope -> {name: JSON value}``, recorded beside the rest.
        header: The request id header to read and echo.
        echo_request_id: Send the request id back in the response header.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        user: Callable[[Scope], Any] | None = None,
        remote_addr: Callable[[Scope], str | None] | None = None,
        request_id: Callable[[Scope], str | None] | None = None,
        extra: Callable[[Scope], Mapping[str, Any]] | None = None,
        header: str = REQUEST_ID_HEADER,
        echo_request_id: bool = True,
    ) -> None:
        self.app = app
        self.user = user or _scope_user
        self.remote_addr = remote_addr or _scope_client
        self.request_id = request_id
        self.extra = extra
        self.header = header.lower().encode("latin-1")
        self.echo_request_id = echo_request_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = self._request_id(scope)
        extra = dict(self.extra(scope)) if self.extra is not None else {}
        with context(
            user=self.user(scope),
            remote_addr=self.remote_addr(scope),
            request_id=request_id,
            **extra,
        ):
            if not self.echo_request_id or scope["type"] != "http":
                await self.app(scope, receive, send)
                return

            async def send_with_id(message: Message) -> None:
                if message["type"] == "http.response.start":
                    headers = list(message.get("headers", []))
                    if not any(name.lower() == self.header for name, _ in headers):
                        headers.append((self.header, request_id.encode("latin-1", "replace")))
                    message["headers"] = headers
                await send(message)

            await self.app(scope, receive, send_with_id)

    def _request_id(self, scope: Scope) -> str:
        if self.request_id is not None:
            found = self.request_id(scope)
            if found:
                return found
        sent = next(
            (value for name, value in scope.get("headers", []) if name.lower() == self.header),
            None,
        )
        return request_id_from(None if sent is None else sent.decode("latin-1"))
