"""Change context for work outside a web request: scripts, CLI commands, Celery tasks.

A script or command::

    from vestige.integrations import job_context

    with job_context("nightly-import", reason="sync from upstream"):
        run_import(session)

A function, each call a job of its own::

    @job("recompute-scores")
    def recompute(session): ...

Celery: :func:`connect_celery` once, where the Celery app is made. Each task then runs
in a context with ``job`` (the task name) and ``task_id``, over the context of whoever
sent it: the sender's context travels in a message header, so a task queued by a web
request records that request's user and ``request_id`` (a task sent from outside any
context gets its task id as ``request_id``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, ParamSpec, TypeVar

from vestige.integrations.common import new_request_id
from vestige.versioning.change_context import ChangeContext, context, current_context

__all__ = ["CELERY_HEADER", "connect_celery", "job", "job_context"]

CELERY_HEADER = "vestige_context"
"""The Celery message header that carries the sender's change context."""

P = ParamSpec("P")
R = TypeVar("R")


@contextmanager
def job_context(
    name: str,
    *,
    user: Any = None,
    reason: str | None = None,
    request_id: str | None = None,
    **extra: Any,
) -> Iterator[ChangeContext]:
    """A change context for a job: ``job=name`` and a fresh ``request_id`` (unless one is
    given or already in force), over the context around it."""
    request_id = request_id or current_context().request_id or new_request_id()
    with context(user=user, reason=reason, request_id=request_id, job=name, **extra) as found:
        yield found


def job(name: str | None = None, **values: Any) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a function so that each call runs in :func:`job_context` (named after
    the function unless ``name`` is given)."""

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(function)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with job_context(name or function.__qualname__, **values):
                return function(*args, **kwargs)

        return wrapper

    return decorate


_stacks: dict[str, ExitStack] = {}


def connect_celery() -> None:
    """Record a change context for every Celery task; see the module.

    Connects to Celery's ``before_task_publish``, ``task_prerun`` and ``task_postrun``
    signals (weakly-held receivers are not used: connecting twice is harmless).
    """
    from celery import signals

    signals.before_task_publish.connect(_publish, weak=False, dispatch_uid="vestige.publish")
    signals.task_prerun.connect(_prerun, weak=False, dispatch_uid="vestige.prerun")
    signals.task_postrun.connect(_postrun, weak=False, dispatch_uid="vestige.postrun")


def _publish(headers: dict[str, Any] | None = None, **_: Any) -> None:
    sent = current_context().to_dict()
    if headers is not None and sent:
        headers.setdefault(CELERY_HEADER, sent)


def _prerun(task_id: str, task: Any, **_: Any) -> None:
    request = task.request
    sent = getattr(request, CELERY_HEADER, None) or (request.headers or {}).get(CELERY_HEADER)
    stack = ExitStack()
    if isinstance(sent, dict):
        stack.enter_context(context(**sent))
    # the sender's request id, so that a request and the tasks it queued share one
    request_id = current_context().request_id or task_id
    stack.enter_context(job_context(task.name, request_id=request_id, task_id=task_id))
    _stacks[task_id] = stack


def _postrun(task_id: str, **_: Any) -> None:
    stack = _stacks.pop(task_id, None)
    if stack is not None:
        stack.close()
