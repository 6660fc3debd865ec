"""Restoring from the browser: the plan first, the write only once it is confirmed.

``GET .../restore`` shows every row the restore would insert, update or delete (from
:func:`~vestige.history.plan_restore`) and a form that carries a digest of that plan.
``POST .../restore`` checks the CSRF token, plans again, and restores only if the plan
is the one that was shown (the restore itself checks once more under its lock); if
the record changed in between, the page says so and shows the new plan, with nothing
written. After the write, the page links the transaction it wrote.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import orm
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from vestige.errors import RestoreConflict
from vestige.history import RestorePlan, history, plan_restore, restore
from vestige.registry import VersionedModel, resolve_model
from vestige.versioning import versioning_manager
from vestige.web.context import Browser, Permission, render, require
from vestige.web.csrf import valid_post
from vestige.web.present import key_from_query, parse_transaction_id

__all__ = ["BAD_CSRF", "CHANGED_SINCE_SHOWN", "confirm", "plan_digest", "plan_page"]

BAD_CSRF = (
    "this form is out of date or came from another site (its CSRF token does not match); "
    "reload the page and confirm again"
)
CHANGED_SINCE_SHOWN = (
    "{record} changed after this plan was shown; nothing was restored. The plan below is "
    "the one that would run now: check it and confirm again"
)
NOTHING_BEFORE = "{record} has only one version: there is nothing older to restore"


def plan_digest(plan: RestorePlan) -> str:
    """A digest of everything a plan shows, to tell whether it changed since."""
    text = json.dumps(plan.to_dict(), default=str, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def plan_page(request: Request) -> Response:
    """The plan of a restore (or undelete), with the form that confirms it."""
    browser = require(request, Permission.RESTORE)
    found = resolve_model(request.path_params["model"])
    key = key_from_query(found.model, request.query_params)
    relations = request.query_params.getlist("relations")
    with browser.reading() as session:
        to = _target(session, found, key, request.query_params.get("to", ""))
        plan = plan_restore(session, found.model, key, to=to, relations=relations)
    return _show_plan(request, found, key, plan, relations)


async def confirm(request: Request) -> Response:
    """Carry out the plan that was shown, if it is still the plan."""
    form = await request.form()
    fields: dict[str, Any] = {name: value for name, value in form.items()}
    if not valid_post(request, fields):
        raise HTTPException(403, BAD_CSRF)
    browser = require(request, Permission.RESTORE)
    found = resolve_model(request.path_params["model"])
    key = key_from_query(found.model, {k: str(v) for k, v in fields.items()})
    relations = [str(value) for value in form.getlist("relations")]
    return await run_in_threadpool(_confirm, request, browser, found, key, relations, fields)


def _confirm(
    request: Request,
    browser: Browser,
    found: VersionedModel,
    key: tuple[Any, ...],
    relations: Sequence[str],
    fields: Mapping[str, Any],
) -> Response:
    to = parse_transaction_id(str(fields.get("to", "")))
    with browser.reading() as session:
        plan = plan_restore(session, found.model, key, to=to, relations=relations)
    if plan_digest(plan) != fields.get("digest"):
        record = f"{found.name} {','.join(str(part) for part in key)}"
        message = CHANGED_SINCE_SHOWN.format(record=record)
        return _show_plan(request, found, key, plan, relations, message, 409)
    with orm.Session(browser.engine) as session:
        try:
            result = restore(session, found.model, key, to=to, relations=relations, expected=plan)
            session.commit()
        except RestoreConflict as exc:
            session.rollback()
            with browser.reading() as reading:
                fresh = plan_restore(reading, found.model, key, to=to, relations=relations)
            return _show_plan(request, found, key, fresh, relations, str(exc), 409)
        except BaseException:
            session.rollback()
            raise
    return render(
        request,
        "restored.html",
        {
            "found": found,
            "key": key,
            "key_text": ",".join(str(part) for part in key),
            "plan": result.plan,
            "transaction_id": result.transaction_id,
        },
    )


def _show_plan(
    request: Request,
    found: VersionedModel,
    key: tuple[Any, ...],
    plan: RestorePlan,
    relations: Sequence[str],
    message: str | None = None,
    status_code: int = 200,
) -> Response:
    # Continuum adds a ``versions`` relationship to every model: not something to restore
    history_classes = set(versioning_manager.version_class_map.values())
    choices = sorted(
        prop.key
        for prop in found.model.__mapper__.relationships
        if prop.mapper.class_ not in history_classes
    )
    return render(
        request,
        "restore.html",
        {
            "found": found,
            "key": key,
            "key_text": ",".join(str(part) for part in key),
            "plan": plan,
            "digest": plan_digest(plan),
            "relations": list(relations),
            "choices": choices,
            "message": message,
        },
        status_code,
    )


def _target(session: orm.Session, found: VersionedModel, key: Any, text: str) -> int:
    """The transaction to restore to: the one asked for, else the version before the newest."""
    if text.strip():
        return parse_transaction_id(text)
    newest = history(session, found.model, key, limit=2)
    if len(newest) < 2:
        record = f"{found.name} {','.join(str(part) for part in key)}"
        raise RestoreConflict(NOTHING_BEFORE.format(record=record))
    return newest[0].transaction_id
