"""Turning versioning on: the one documented way.

Two calls, in this order::

    from vestige.versioning import make_versioned, configure_mappers

    make_versioned(user_cls="Maintainer")   # before the models are declared
    # ... declare models with __versioned__ = {} ...
    configure_mappers()                      # once they all are

``make_versioned`` wraps SQLAlchemy-Continuum's function of the same name and adds
:class:`ActorPlugin`, which records who made each change (``transaction.user_id``) and
from where (``transaction.remote_addr``). ``configure_mappers`` builds the version
classes and tables and indexes ``transaction.issued_at``, which retention filters on.

Who made a change is set per session or per context::

    with actor(user_id=7, remote_addr="10.0.0.1"):
        session.commit()

    set_actor(session, user_id=7)            # for the rest of this session's life
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import sqlalchemy_continuum
from sqlalchemy import orm
from sqlalchemy_continuum import VersioningManager
from sqlalchemy_continuum.plugins.base import Plugin
from sqlalchemy_continuum.transaction import TransactionFactory

from vestige.versioning.bulk import BulkWriteMode, install_bulk_write_guard
from vestige.versioning.recording import install_flush_tracking
from vestige.versioning.unit_of_work import SetBasedUnitOfWork

__all__ = [
    "ISSUED_AT_INDEX",
    "Actor",
    "ActorPlugin",
    "actor",
    "configure_mappers",
    "make_versioned",
    "set_actor",
    "versioning_manager",
]

ISSUED_AT_INDEX = "ix_transaction_issued_at"
_SESSION_KEY = "vestige.actor"

versioning_manager: VersioningManager = sqlalchemy_continuum.versioning_manager
"""Continuum's global manager, the one ``make_versioned`` configures by default."""


@dataclass(frozen=True)
class Actor:
    """Who made a change and from where; both optional."""

    user_id: Any = None
    remote_addr: str | None = None


_current_actor: contextvars.ContextVar[Actor | None] = contextvars.ContextVar(
    "vestige_actor", default=None
)


@contextmanager
def actor(user_id: Any = None, remote_addr: str | None = None) -> Iterator[Actor]:
    """Attribute every transaction committed inside the block to this actor.

    Works across threads and asyncio tasks (a context variable), and is overridden by
    :func:`set_actor` on a particular session.
    """
    value = Actor(user_id, remote_addr)
    token = _current_actor.set(value)
    try:
        yield value
    finally:
        _current_actor.reset(token)


def set_actor(session: orm.Session, user_id: Any = None, remote_addr: str | None = None) -> None:
    """Attribute the transactions this session writes from now on to this actor."""
    session.info[_SESSION_KEY] = Actor(user_id, remote_addr)


class ActorPlugin(Plugin):  # type: ignore[misc]
    """A Continuum plugin that fills ``transaction.user_id`` and ``remote_addr``."""

    def transaction_args(self, uow: Any, session: orm.Session) -> dict[str, Any]:
        current = session.info.get(_SESSION_KEY) or _current_actor.get()
        if current is None:
            return {}
        transaction_cls = uow.manager.transaction_cls
        args: dict[str, Any] = {}
        if current.user_id is not None and hasattr(transaction_cls, "user_id"):
            args["user_id"] = current.user_id
        if current.remote_addr is not None and hasattr(transaction_cls, "remote_addr"):
            args["remote_addr"] = current.remote_addr
        return args


_configured_managers: set[int] = set()


def make_versioned(
    user_cls: str | type | None = "User",
    *,
    manager: VersioningManager | None = None,
    plugins: Sequence[Plugin] = (),
    options: Mapping[str, Any] | None = None,
    unit_of_work_cls: type = SetBasedUnitOfWork,
    bulk_writes: BulkWriteMode | None = None,
) -> VersioningManager:
    """Turn versioning on for every mapper and session; call before declaring models.

    Args:
        user_cls: The model (or its class name) that ``transaction.user_id`` refers to,
            or ``None`` for no user column.
        manager: The Continuum manager to configure (default: Continuum's global one).
        plugins: Continuum plugins to add after :class:`ActorPlugin`.
        options: Continuum options (``strategy``, ``native_versioning``, ...).
        unit_of_work_cls: The unit of work class. Vestige's
            :class:`~vestige.versioning.unit_of_work.SetBasedUnitOfWork` by default; pass
            ``sqlalchemy_continuum.UnitOfWork`` to go back to stock Continuum.
        bulk_writes: What bulk ``update()``/``delete()``/``insert()`` statements on
            versioned models do: ``"warn"``, ``"raise"`` or ``"version"`` (see
            :mod:`vestige.versioning.bulk`); ``warn`` by default. To keep the mode in
            ``[tool.vestige] bulk_writes``, pass ``load_settings(...).bulk_writes``.

    Returns:
        The configured manager. Calling again with the same manager changes nothing.
    """
    manager = manager if manager is not None else versioning_manager
    if id(manager) in _configured_managers:
        return manager
    manager.uow_class = unit_of_work_cls
    if issubclass(unit_of_work_cls, SetBasedUnitOfWork):
        install_flush_tracking(manager)
    sqlalchemy_continuum.make_versioned(
        user_cls=user_cls,
        manager=manager,
        plugins=[ActorPlugin(), *plugins],
        options=dict(options or {}),
    )
    sa.event.listen(orm.Mapper, "after_configured", lambda: _index_issued_at(manager))
    install_bulk_write_guard(bulk_writes, manager=manager)
    _configured_managers.add(id(manager))
    return manager


def configure_mappers() -> None:
    """Build the version classes and tables of every declared versioned model.

    Call once all models are declared (importing the models package should do it):
    until then the ``*_version`` tables are not in the metadata, and an Alembic
    autogenerate run would propose dropping them.
    """
    orm.configure_mappers()


def _index_issued_at(manager: VersioningManager) -> None:
    transaction_cls = manager.transaction_cls
    if isinstance(transaction_cls, TransactionFactory):
        return
    table: sa.Table = transaction_cls.__table__
    if not any(index.name == ISSUED_AT_INDEX for index in table.indexes):
        sa.Index(ISSUED_AT_INDEX, table.c.issued_at)
