"""Versioning: turning it on, the actor, and the set-based unit of work that writes versions.

:mod:`~vestige.versioning.setup` holds the two documented calls (``make_versioned``,
``configure_mappers``) and the actor; the unit of work is split by concern into
:mod:`~vestige.versioning.unit_of_work`, and :mod:`~vestige.versioning.bulk` guards (and
versions) bulk statements.
"""

from __future__ import annotations

from vestige.versioning.bulk import install_bulk_write_guard
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
    "SetBasedUnitOfWork",
    "actor",
    "configure_mappers",
    "install_bulk_write_guard",
    "make_versioned",
    "set_actor",
    "versioning_manager",
]
