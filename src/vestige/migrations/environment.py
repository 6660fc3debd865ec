"""What an Alembic ``env.py`` calls at run time besides the guard and the options.

``vestige init`` writes ``env.py`` files that use :func:`connection_from`: a test harness
(:mod:`vestige.testing`, pytest-alembic, Alembic's "sharing a connection" recipe) hands
an Engine or a Connection over in ``config.attributes["connection"]``, and the
migrations must run on that one, never on the database the URL names.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

__all__ = ["connection_from"]


@contextmanager
def connection_from(connectable: sa.Engine | sa.Connection) -> Iterator[sa.Connection]:
    """A connection of ``connectable``, for ``with ... as connection:`` in ``env.py``.

    A Connection is used as it is and left open (its owner closes it); an Engine gives a
    new connection, closed at the end of the block.

    Example:
        >>> engine = sa.create_engine("sqlite://")
        >>> with connection_from(engine) as connection:
        ...     connection.scalar(sa.text("SELECT 1"))
        1
    """
    if isinstance(connectable, sa.Connection):
        yield connectable
        return
    with connectable.connect() as connection:
        yield connection
