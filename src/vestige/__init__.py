"""Vestige: record history for SQLAlchemy.

Versioning set-up lives in :mod:`vestige.versioning`, reading history in
:mod:`vestige.history`, Alembic integration in :mod:`vestige.migrations`.
"""

from __future__ import annotations

from vestige.config import Settings, load_settings
from vestige.errors import VestigeError

__all__ = ["Settings", "VestigeError", "__version__", "load_settings"]
__version__ = "0.1.0"
