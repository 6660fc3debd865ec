"""Versioning: turning it on, the change context, and the unit of work that writes versions.

:mod:`~vestige.versioning.setup` holds the two documented calls (``make_versioned``,
``configure_mappers``); :mod:`~vestige.versioning.change_context` the change context
recorded with each transaction; the unit of work is split by concern into
:mod:`~vestige.versioning.unit_of_work`, and :mod:`~vestige.versioning.bulk` guards (and
versions) bulk statements.
"""

from __future__ import annotations

from vestige.versioning.bulk import install_bulk_write_guard
from vestige.versioning.change_context import (
    ChangeContext,
    ContextPlugin,
    context,
    current_context,
    set_context,
)
from vestige.versioning.setup import (
    ISSUED_AT_INDEX,
    Actor,
    ActorPlugin,
    actor,
    configure_mappers,
    make_versioned,
    set_actor,
    versioning_manager,
)
from vestige.versioning.unit_of_work import SetBasedUnitOfWork

__all__ = [
    "ISSUED_AT_INDEX",
    "Actor",
    "ActorPlugin",
    "ChangeContext",
    "ContextPlugin",
    "SetBasedUnitOfWork",
    "actor",
    "configure_mappers",
    "context",
    "current_context",
    "install_bulk_write_guard",
    "make_versioned",
    "set_actor",
    "set_context",
    "versioning_manager",
]
