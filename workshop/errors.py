"""The workshop's errors: part of Vestige's one hierarchy, so they print as one line."""

from __future__ import annotations

from vestige.errors import VestigeError


class WorkshopError(VestigeError):
    """Setup or check refused to go on; the message says why and what to do."""

    exit_code = 1


class WorkshopUsageError(WorkshopError):
    """The command was given something it cannot use (an unknown exercise, no git)."""

    exit_code = 2
