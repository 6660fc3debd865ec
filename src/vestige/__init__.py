"""Vestige: record history for SQLAlchemy.

The change context recorded with each transaction is ``vestige.context(...)`` (a block)
and ``vestige.set_context(session, ...)``. Versioning set-up lives in
:mod:`vestige.versioning`, reading history in :mod:`vestige.history`, Alembic integration
in :mod:`vestige.migrations`, web frameworks and jobs in :mod:`vestige.integrations`.
"""

from __future__ import annotations

from vestige.config import Settings, load_settings
from vestige.errors import VestigeError
from vestige.versioning.change_context import (
    ChangeContext,
    context,
    current_context,
    set_context,
)

__all__ = [
    "ChangeContext",
    "Settings",
    "VestigeError",
    "__version__",
    "context",
    "current_context",
    "load_settings",
    "set_context",
]
__version__ = "0.1.0"
