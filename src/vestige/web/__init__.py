"""The history browser: a web page over any Vestige database.

An ASGI application (Starlette, server-rendered Jinja2 templates, a few lines of plain
JavaScript) over :mod:`vestige.history`: the versioned models, each record's timeline,
a diff of any two versions, a record as of a moment, a transaction, deleted records and
their undelete, and a search of transactions. Mount it in an application with
:func:`create_app` (an ``authorize`` callable is required), or run it with
``vestige serve``. Needs the ``web`` extra: ``pip install vestige[web]``.
"""

from __future__ import annotations

from vestige.web.app import create_app
from vestige.web.context import Authorize, Permission

__all__ = ["Authorize", "Permission", "create_app"]
