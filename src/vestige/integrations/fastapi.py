"""A FastAPI dependency: the change context from FastAPI's own authentication.

FastAPI authenticates in dependencies (``Depends(get_current_user)``), after any
middleware has run; this dependency reads the user from one::

    from fastapi import Depends, FastAPI
    from vestige.integrations.fastapi import change_context

    app = FastAPI(dependencies=[Depends(change_context(user=get_current_user))])

``user`` is a FastAPI dependency (with its own dependencies, as usual) returning a user
object or an id; :func:`~vestige.integrations.common.user_key` turns it into the id to
record. ``remote_addr`` and ``request_id`` come from the request as in
:class:`~vestige.integrations.asgi.VestigeMiddleware`, unless that middleware already
set them, and ``reason`` and ``extra`` are recorded as given. Use it on the app, a
router, or one route.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import Depends, Request

from vestige.integrations.common import REQUEST_ID_HEADER, request_id_from, user_key
from vestige.versioning.change_context import ChangeContext, context, current_context

__all__ = ["change_context"]


def change_context(
    user: Callable[..., Any] | None = None,
    *,
    reason: str | None = None,
    header: str = REQUEST_ID_HEADER,
    **extra: Any,
) -> Callable[..., AsyncIterator[ChangeContext]]:
    """A dependency that records the change context for the rest of the request.

    Args:
        user: A dependency that returns the current user (or its id); ``None``: nobody.
        reason: Recorded as the context's ``reason``.
        header: The request id header to read.
        **extra: Other JSON values to record.

    Returns:
        The dependency, for ``Depends(...)``; its value is the context in force.
    """

    async def _enter(request: Request, current: Any) -> AsyncIterator[ChangeContext]:
        outer = current_context()
        client = request.client.host if request.client else None
        request_id = outer.request_id or request_id_from(request.headers.get(header))
        with context(
            user=user_key(current),
            remote_addr=outer.remote_addr or client,
            reason=reason,
            request_id=request_id,
            **extra,
        ) as found:
            yield found

    if user is None:

        async def without_user(request: Request) -> AsyncIterator[ChangeContext]:
            async for found in _enter(request, None):
                yield found

        return without_user

    async def with_user(
        request: Request,
        current: Any = Depends(user),  # noqa: B008 (FastAPI reads dependencies from defaults)
    ) -> AsyncIterator[ChangeContext]:
        async for found in _enter(request, current):
            yield found

    return with_user
