"""A pytest plugin that runs SQLAlchemy-Continuum's own test suite under Vestige.

Loaded with ``-p vestige_plugin`` by ``tests/continuum/suite.py``; the suite's files stay
as shipped. Two environment variables choose what it patches in:

- ``VESTIGE_UOW``: ``vestige`` installs :class:`vestige.versioning.unit_of_work.SetBasedUnitOfWork`
  and its update tracking on Continuum's global manager (the one the suite uses), as
  ``vestige.versioning.make_versioned`` does; ``stock`` leaves Continuum's.
- ``VESTIGE_STRATEGY``: ``validity`` forces the validity strategy on every test case
  (the suite defaults to ``subquery``); ``shipped`` leaves each test's own choice.
"""

from __future__ import annotations

import os
from typing import Any

import pytest


def pytest_configure(config: pytest.Config) -> None:
    import sqlalchemy_continuum

    if os.environ.get("VESTIGE_UOW", "stock") == "vestige":
        from vestige.versioning.recording import install_flush_tracking
        from vestige.versioning.unit_of_work import SetBasedUnitOfWork

        # What vestige.versioning.make_versioned does to the manager it configures.
        sqlalchemy_continuum.versioning_manager.uow_class = SetBasedUnitOfWork
        install_flush_tracking(sqlalchemy_continuum.versioning_manager)
    if os.environ.get("VESTIGE_STRATEGY", "shipped") == "validity":
        import tests as suite  # the suite's own package, tests/__init__.py

        shipped = suite.TestCase.options

        def forced(self: Any) -> dict[str, Any]:
            return {**shipped.fget(self), "strategy": "validity"}

        suite.TestCase.options = property(forced)


def pytest_report_header(config: pytest.Config) -> str:
    import sqlalchemy_continuum

    manager = sqlalchemy_continuum.versioning_manager
    strategy = os.environ.get("VESTIGE_STRATEGY", "shipped")
    return f"vestige: unit of work {manager.uow_class.__qualname__}, strategy {strategy}"
