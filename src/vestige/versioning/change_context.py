"""Change context: who made a change, from where, why, in which request, and anything else.

Every transaction Continuum records gets the context in force at its first flush::

    import vestige

    with vestige.context(user=7, remote_addr="10.0.0.1", request_id="f3a1", reason="import"):
        session.commit()

    vestige.set_context(session, user=7)     # for everything this session writes from now on

Contexts nest: an inner block adds to (and overrides keys of) the outer one, and a
session's own context (:func:`set_context`) is laid over the block's. The block's context
lives in a :class:`contextvars.ContextVar`, so it follows ``await`` and the tasks asyncio
starts, and threads started with a copied context (``contextvars.copy_context().run``,
``asyncio.to_thread``, Starlette's thread pool), and it never leaks from one request to
another.

Where it is stored (:class:`ContextPlugin`): ``user`` goes to ``transaction.user_id`` and
``remote_addr`` to ``transaction.remote_addr``, Continuum's own columns, so the stock
relationship ``Transaction.user`` and existing queries keep working. Everything else goes
into one JSON column, ``transaction.context`` (``JSONB`` on PostgreSQL), beside them; so
does ``user`` when the transaction table has no ``user_id`` (``make_versioned(user_cls=None)``).
One column rather than Continuum's ``TransactionMetaPlugin`` (a ``transaction_meta`` table
of string key/value rows): the context is written in the same INSERT as the transaction,
read in the same SELECT as the history it annotates, keeps its JSON types (numbers,
booleans, lists), can be filtered with ``@>`` on PostgreSQL, and is deleted with its
transaction row by retention, with no second table to keep in step.
"""

from __future__ import annotations

import contextvars
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.dialects import postgresql
from sqlalchemy_continuum import VersioningManager
from sqlalchemy_continuum.plugins.base import Plugin

from vestige.errors import ConfigError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

__all__ = [
    "CONTEXT_COLUMN",
    "ChangeContext",
    "ContextPlugin",
    "context",
    "current_context",
    "session_context",
    "set_context",
]

CONTEXT_COLUMN = "context"
_SESSION_KEY = "vestige.context"
NOT_JSON = "change context {key}={value!r} cannot be stored: {problem}; pass JSON values"


@dataclass(frozen=True)
class ChangeContext:
    """The context of a change: ``user``, ``remote_addr``, ``reason``, ``request_id``, extra.

    ``None`` means "not set": merging never lets it hide an outer value.
    """

    user: Any = None
    remote_addr: str | None = None
    reason: str | None = None
    request_id: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def merged(self, inner: ChangeContext | None) -> ChangeContext:
        """This context with ``inner``'s set values laid over it."""
        if inner is None:
            return self
        return ChangeContext(
            user=self.user if inner.user is None else inner.user,
            remote_addr=self.remote_addr if inner.remote_addr is None else inner.remote_addr,
            reason=self.reason if inner.reason is None else inner.reason,
            request_id=self.request_id if inner.request_id is None else inner.request_id,
            extra={**self.extra, **inner.extra},
        )

    def to_dict(self) -> dict[str, Any]:
        """Every set value, named as :func:`context` takes them."""
        named = {
            "user": self.user,
            "remote_addr": self.remote_addr,
            "reason": self.reason,
            "request_id": self.request_id,
        }
        return {**{k: v for k, v in named.items() if v is not None}, **self.extra}

    def stored(self, *, user_column: bool, remote_addr_column: bool) -> dict[str, Any]:
        """What goes into the JSON column: everything the transaction table has no
        column of its own for."""
        values = self.to_dict()
        if user_column:
            values.pop("user", None)
        if remote_addr_column:
            values.pop("remote_addr", None)
        return values


_current: contextvars.ContextVar[ChangeContext | None] = contextvars.ContextVar(
    "vestige_context", default=None
)


def _build(
    user: Any,
    remote_addr: str | None,
    reason: str | None,
    request_id: str | None,
    extra: Mapping[str, Any],
) -> ChangeContext:
    found = ChangeContext(user, remote_addr, reason, request_id, dict(extra))
    for key, value in found.to_dict().items():
        try:
            json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(NOT_JSON.format(key=key, value=value, problem=exc)) from None
    return found


@contextmanager
def context(
    user: Any = None,
    remote_addr: str | None = None,
    reason: str | None = None,
    request_id: str | None = None,
    **extra: Any,
) -> Iterator[ChangeContext]:
    """Record this context with every transaction whose first flush happens in the block.

    Args:
        user: The user's id (``transaction.user_id``).
        remote_addr: The client's address (``transaction.remote_addr``).
        reason: Why the change is made, in words.
        request_id: The request or job this change belongs to.
        **extra: Any other JSON values (``tenant="acme"``, ``job="nightly-import"``).

    Yields:
        The context now in force: the outer one's values with these laid over them.

    Raises:
        ConfigError: A value is not JSON.
    """
    outer = _current.get() or ChangeContext()
    value = outer.merged(_build(user, remote_addr, reason, request_id, extra))
    token = _current.set(value)
    try:
        yield value
    finally:
        _current.reset(token)


def set_context(
    session: orm.Session | AsyncSession,
    user: Any = None,
    remote_addr: str | None = None,
    reason: str | None = None,
    request_id: str | None = None,
    **extra: Any,
) -> ChangeContext:
    """Record this context with every transaction this session writes from now on.

    It replaces what an earlier ``set_context`` on the session set, and is laid over the
    :func:`context` block in force when a transaction starts. Works on an ``AsyncSession``
    too (its ``sync_session`` carries it).
    """
    value = _build(user, remote_addr, reason, request_id, extra)
    _session_info(session)[_SESSION_KEY] = value
    return value


def current_context() -> ChangeContext:
    """The context of the innermost :func:`context` block (empty outside any)."""
    return _current.get() or ChangeContext()


def session_context(session: orm.Session | AsyncSession) -> ChangeContext:
    """The context a transaction this session starts now would record."""
    return current_context().merged(_session_info(session).get(_SESSION_KEY))


def _session_info(session: Any) -> dict[Any, Any]:
    # An AsyncSession proxies .info to its sync session; a plain Session has its own.
    info: dict[Any, Any] = session.info
    return info


class ContextPlugin(Plugin):  # type: ignore[misc]
    """A Continuum plugin that stores the change context with each transaction.

    It adds the JSON ``context`` column to Continuum's transaction class when that class
    is built (unless ``column=False``), and fills ``user_id``, ``remote_addr`` and
    ``context`` when a transaction is created.
    """

    def __init__(self, column: bool = True) -> None:
        self.column = column

    def after_build_tx_class(self, manager: VersioningManager) -> None:
        transaction_cls = manager.transaction_cls
        if not self.column or CONTEXT_COLUMN in transaction_cls.__table__.c:
            return
        json_type = sa.JSON(none_as_null=True).with_variant(
            postgresql.JSONB(none_as_null=True), "postgresql"
        )
        # declarative adds the column to the table and the mapper
        transaction_cls.context = sa.Column(CONTEXT_COLUMN, json_type, nullable=True)

    def transaction_args(self, uow: Any, session: orm.Session) -> dict[str, Any]:
        found = session_context(session)
        transaction_cls = uow.manager.transaction_cls
        columns = transaction_cls.__table__.c
        user_column = "user_id" in columns
        remote_addr_column = "remote_addr" in columns
        args: dict[str, Any] = {}
        if found.user is not None and user_column:
            args["user_id"] = found.user
        if found.remote_addr is not None and remote_addr_column:
            args["remote_addr"] = found.remote_addr
        if CONTEXT_COLUMN in columns:
            stored = found.stored(user_column=user_column, remote_addr_column=remote_addr_column)
            args[CONTEXT_COLUMN] = stored or None
        return args
