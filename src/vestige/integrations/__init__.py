"""Integrations: the change context from web requests and background jobs.

Framework-free, importable without any web framework:

- :class:`~vestige.integrations.asgi.VestigeMiddleware`: ASGI (Starlette, FastAPI, Litestar);
- :class:`~vestige.integrations.wsgi.VestigeWSGIMiddleware`: any WSGI application;
- :func:`~vestige.integrations.jobs.job_context`, :func:`~vestige.integrations.jobs.job`,
  :func:`~vestige.integrations.jobs.connect_celery`: scripts, commands, Celery tasks.

Each framework's own module imports that framework: :mod:`vestige.integrations.fastapi`
(a dependency, ``vestige[fastapi]``) and :mod:`vestige.integrations.flask` (an extension
that knows Flask-Login, ``vestige[flask]``). All of them only set the context of
:func:`vestige.context`; what is recorded and where is :mod:`vestige.versioning.change_context`.
"""

from __future__ import annotations

from vestige.integrations.asgi import VestigeMiddleware
from vestige.integrations.common import (
    REQUEST_ID_HEADER,
    new_request_id,
    request_id_from,
    user_key,
)
from vestige.integrations.jobs import CELERY_HEADER, connect_celery, job, job_context
from vestige.integrations.wsgi import VestigeWSGIMiddleware

__all__ = [
    "CELERY_HEADER",
    "REQUEST_ID_HEADER",
    "VestigeMiddleware",
    "VestigeWSGIMiddleware",
    "connect_celery",
    "job",
    "job_context",
    "new_request_id",
    "request_id_from",
    "user_key",
]
