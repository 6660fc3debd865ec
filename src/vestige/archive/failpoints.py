"""Failpoints: stop the process dead at a named step, so that tests can prove recovery.

``VESTIGE_ARCHIVE_FAILPOINT=step`` (or ``step:N``, the N-th time the step is reached)
makes the process call :func:`os._exit` there: no ``finally`` block, no rollback, no
flush runs, as when the machine loses power. Unset, a failpoint costs one dictionary
look-up. The steps of an archiving prune batch, in order:

* ``staged``: the manifest lists the batch's files as pending; nothing is written yet;
* ``written``: the files are written and read back; the database batch is not committed;
* ``committed``: the database batch is committed; the manifest still says pending.
"""

from __future__ import annotations

import os

__all__ = ["FAILPOINT_ENV", "FAILPOINT_EXIT", "STEPS", "failpoint"]

FAILPOINT_ENV = "VESTIGE_ARCHIVE_FAILPOINT"
FAILPOINT_EXIT = 86
STEPS = ("staged", "written", "committed")

_reached: dict[str, int] = {}


def failpoint(step: str) -> None:
    """Exit the process at once if ``VESTIGE_ARCHIVE_FAILPOINT`` names ``step`` (and count)."""
    wanted = os.environ.get(FAILPOINT_ENV)
    if not wanted:
        return
    name, _, count = wanted.partition(":")
    if name != step:
        return
    _reached[step] = _reached.get(step, 0) + 1
    if _reached[step] >= int(count or 1):
        os._exit(FAILPOINT_EXIT)
