"""The read-only pages: models, a model's versions, deleted records, a record's timeline,
a diff, a record as of a moment, a transaction, and the search of transactions.

Each page reads one page of rows through :mod:`vestige.history` and renders a template;
positions in long lists travel as keyset cursors (``before`` / ``after``), never offsets.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from vestige.errors import ConfigError, RecordNotFound
from vestige.history import (
    Version,
    as_of,
    diff,
    model_summary,
    touched_records,
    transaction_details,
    transaction_rows,
    transactions_page,
    versions_page,
)
from vestige.history.queries import transaction_table
from vestige.registry import VersionedModel, resolve_model, versioned_models
from vestige.web.context import Browser, Permission, render, require
from vestige.web.present import convert, decode_cursor, key_from_query, parse_transaction_id

__all__ = [
    "as_of_page",
    "deleted_page",
    "diff_page",
    "model_page",
    "models_page",
    "record_page",
    "search_page",
    "transaction_page",
]

BAD_MOMENT = (
    "bad moment {text!r}: give a transaction id (e.g. 42) or a time in UTC (e.g. 2026-01-31T12:00)"
)
BAD_USER = "bad user id {text!r}: give the id of a user (transaction.user_id)"
NO_TRANSACTION = "no transaction {transaction_id}: it never ran, or its history was pruned"
NO_VERSION = "{model} {key} has no version at or before transaction {transaction_id}"
#: Above this many rows (by the database's statistics), a table's rows are estimated, not
#: counted, on the models' pages: counting a million rows alone takes most of a page's time.
ESTIMATE_ABOVE = 200_000
#: Records listed per transaction and version table in search results; the transaction's
#: own page lists them all.
SEARCH_TOUCHED = 3
#: The transaction columns every page shows under their own headings.
_KNOWN_COLUMNS = frozenset({"id", "issued_at", "user_id", "remote_addr", "user"})


def models_page(request: Request) -> Response:
    """Every versioned model with its live rows, versions, deleted records and oldest history."""
    browser = require(request, Permission.READ)
    with browser.reading() as session:
        rows = [
            (found, model_summary(session, found.model, estimate_above=ESTIMATE_ABOVE))
            for found in versioned_models().values()
        ]
    return render(request, "models.html", {"rows": rows})


def model_page(request: Request) -> Response:
    """A model's summary and its newest versions, across its records, a page at a time."""
    browser = require(request, Permission.READ)
    found = _model(request)
    with browser.reading() as session:
        summary = model_summary(session, found.model, estimate_above=ESTIMATE_ABOVE)
        page = _versions(request, browser, found, session)
        extra = _extra_columns(transaction_rows(session, [v.transaction_id for v in page.items]))
    return render(
        request,
        "model.html",
        {
            "found": found,
            "summary": summary,
            "page": page,
            "extra": extra,
            "show_context": any(extra.values()),
        },
    )


def deleted_page(request: Request) -> Response:
    """A model's deleted records, newest delete first, each with its undelete link."""
    browser = require(request, Permission.READ)
    found = _model(request)
    with browser.reading() as session:
        page = _versions(request, browser, found, session, deleted=True)
    return render(request, "deleted.html", {"found": found, "page": page})


def record_page(request: Request) -> Response:
    """A record's timeline: each version with its transaction, who, where, and changes."""
    browser = require(request, Permission.READ)
    found = _model(request)
    key = key_from_query(found.model, request.query_params)
    with browser.reading() as session:
        page = _versions(request, browser, found, session, key=key)
        if not page.items and not request.query_params.get("before"):
            raise RecordNotFound(f"no history for {found.name} {_key_text(key)}")
        extra = _extra_columns(transaction_rows(session, [v.transaction_id for v in page.items]))
    return render(
        request,
        "record.html",
        {
            "found": found,
            "key": key,
            "key_text": _key_text(key),
            "page": page,
            "extra": extra,
            "show_context": any(extra.values()),
        },
    )


def diff_page(request: Request) -> Response:
    """Two versions of a record side by side, the fields that differ marked."""
    browser = require(request, Permission.READ)
    found = _model(request)
    key = key_from_query(found.model, request.query_params)
    first = parse_transaction_id(request.query_params.get("a", ""))
    second = parse_transaction_id(request.query_params.get("b", ""))
    with browser.reading() as session:
        one = _version_at(session, found, key, first)
        two = _version_at(session, found, key, second)
    older, newer = sorted((one, two), key=lambda version: version.transaction_id)
    changed = {change.field for change in diff(older, newer)}
    return render(
        request,
        "diff.html",
        {
            "found": found,
            "key": key,
            "key_text": _key_text(key),
            "older": older,
            "newer": newer,
            "changed": changed,
        },
    )


def as_of_page(request: Request) -> Response:
    """The record as it was at a transaction or a time."""
    browser = require(request, Permission.READ)
    found = _model(request)
    key = key_from_query(found.model, request.query_params)
    text = request.query_params.get("at", "").strip()
    when = _moment(text)
    with browser.reading() as session:
        version = as_of(session, found.model, key, when)
    return render(
        request,
        "as_of.html",
        {
            "found": found,
            "key": key,
            "key_text": _key_text(key),
            "version": version,
            "at": text,
            "when": when,
        },
    )


def transaction_page(request: Request) -> Response:
    """A transaction: every column of its row, and every record it touched."""
    browser = require(request, Permission.READ)
    transaction_id: int = request.path_params["transaction_id"]
    with browser.reading() as session:
        details = transaction_details(session, transaction_id)
        if details is None:
            raise RecordNotFound(NO_TRANSACTION.format(transaction_id=transaction_id))
        touched = touched_records(session, transaction_id, per_table=browser.page_size * 10)
    models = versioned_models()
    return render(
        request,
        "transaction.html",
        {
            "details": details,
            "extra": {k: v for k, v in details.items() if k not in _KNOWN_COLUMNS},
            "touched": touched,
            "models": models,
            "limit": browser.page_size * 10,
        },
    )


def search_page(request: Request) -> Response:
    """Transactions by user, time range and model, newest first."""
    browser = require(request, Permission.READ)
    query = request.query_params
    user_text = query.get("user", "").strip()
    since_text = query.get("since", "").strip()
    until_text = query.get("until", "").strip()
    model_name = query.get("model", "").strip()
    model = resolve_model(model_name).model if model_name else None
    user: Any = None
    if user_text:
        column = transaction_table().c.get("user_id")
        if column is None:
            raise ConfigError(BAD_USER.format(text=user_text))
        try:
            user = convert(column, user_text)
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(BAD_USER.format(text=user_text)) from None
    since = _time(since_text) if since_text else None
    until = _time(until_text) if until_text else None
    with browser.reading() as session:
        page = transactions_page(
            session,
            since=since,
            until=until,
            user=user,
            model=model,
            before=decode_cursor(None, query.get("before")),
            after=decode_cursor(None, query.get("after")),
            limit=browser.page_size,
            touched_limit=SEARCH_TOUCHED,
        )
    filters = {
        "user": user_text or None,
        "since": since_text or None,
        "until": until_text or None,
        "model": model_name or None,
    }
    return render(
        request,
        "search.html",
        {
            "page": page,
            "filters": filters,
            "models": versioned_models(),
            "touched_limit": SEARCH_TOUCHED,
        },
    )


def _model(request: Request) -> VersionedModel:
    return resolve_model(request.path_params["model"])


def _versions(
    request: Request,
    browser: Browser,
    found: VersionedModel,
    session: Any,
    *,
    key: tuple[Any, ...] | None = None,
    deleted: bool = False,
) -> Any:
    query = request.query_params
    return versions_page(
        session,
        found.model,
        key=key,
        deleted=deleted,
        before=decode_cursor(found.model, query.get("before")),
        after=decode_cursor(found.model, query.get("after")),
        limit=browser.page_size,
    )


def _version_at(
    session: Any, found: VersionedModel, key: tuple[Any, ...], transaction_id: int
) -> Version:
    """The version of the record written at ``transaction_id`` (or the last before it)."""
    page = versions_page(session, found.model, key=key, before=(transaction_id + 1, *key), limit=1)
    if not page.items:
        raise RecordNotFound(
            NO_VERSION.format(model=found.name, key=_key_text(key), transaction_id=transaction_id)
        )
    return page.items[0]


def _extra_columns(rows: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """The transaction columns beyond id, time, user and address, by transaction."""
    return {
        tx_id: {name: value for name, value in row.items() if name not in _KNOWN_COLUMNS}
        for tx_id, row in rows.items()
    }


def _key_text(key: tuple[Any, ...]) -> str:
    return ",".join(str(part) for part in key)


def _moment(text: str) -> datetime | int:
    if text.isdigit():
        return parse_transaction_id(text)
    return _time(text)


def _time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(BAD_MOMENT.format(text=text[:80])) from None
