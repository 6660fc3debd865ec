"""Loaded by pytest wherever Vestige is installed: keeps pytest-alembic from crashing it.

pytest-alembic (0.13.1 and older) registers, at session start, a collection plugin
whose collector sets ``Node._nodeid``, which pytest 9 no longer has: every run in a
project with a ``tests/conftest.py`` then fails at collection with ``'TestCollector'
object has no attribute '_nodeid'``. That collector only serves pytest-alembic's
``--test-alembic`` option (its built-in tests bound to a conftest); ``vestige.testing``
and pytest-alembic's fixtures do not need it. So on pytest 9, unless ``--test-alembic``
was given, this plugin unregisters it again, and plain ``pytest`` works after
``pip install "vestige[testing]"``. Everything else of pytest-alembic stays.
"""

from __future__ import annotations

import pytest

#: The name pytest-alembic registers its collection plugin under.
COLLECTION_PLUGIN = "pytest-alembic"


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Unregister pytest-alembic's collection plugin where it would crash (pytest 9)."""
    if int(pytest.version_tuple[0]) < 9:
        return
    manager = session.config.pluginmanager
    plugin = manager.get_plugin(COLLECTION_PLUGIN)
    if plugin is None or getattr(
        session.config.option, "pytest_alembic_registration_enabled", False
    ):
        return
    manager.unregister(plugin, COLLECTION_PLUGIN)
