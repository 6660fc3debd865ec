"""Random histories for the property tests: steps Hypothesis draws, played and dated.

Each step is one transaction (an insert, update or delete of a package, a many-to-many
link or unlink, or an empty transaction) a number of days after the one before;
``overtakes`` numbers some transactions before the one committed just ahead of them, as
two writers do (Continuum numbers a transaction at its first flush).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import hypothesis.strategies as st
import sqlalchemy as sa
from sqlalchemy.orm import Session

import models
from tests.support.retention_data import (
    ASSOCIATION_VERSION_TABLE,
    ENTITY_VERSION_TABLES,
    NOW,
    TX,
    forget_id,
    plain,
    take_id,
)

START = NOW - timedelta(days=1500)
TABLES = {
    "Package": ENTITY_VERSION_TABLES["package"],
    "Maintainer": ENTITY_VERSION_TABLES["maintainer"],
    "package_maintainer": ASSOCIATION_VERSION_TABLE,
}

step = st.tuples(
    st.sampled_from(["write", "write", "write", "delete", "link", "empty"]),
    st.integers(0, 3),  # which package
    st.integers(0, 2),  # which maintainer
    st.integers(0, 150),  # days since the previous step
)
rules = st.fixed_dictionaries(
    {},
    optional={
        "keep_days": st.integers(0, 500),
        "keep_versions": st.integers(0, 4),
        "deleted_keep_days": st.integers(0, 500),
    },
)


def interleaved_ids(count: int, overtakes: Sequence[bool]) -> list[int]:
    """Transaction ids for ``count`` transactions committed in order, where transaction i
    *overtakes* (took its id at its first flush before transaction i - 1 did) when
    ``overtakes[i]``: ids then disagree with commit order, as with two writers."""
    ids = list(range(1, count + 1))
    i = 1
    while i < count:
        if i < len(overtakes) and overtakes[i]:
            ids[i - 1], ids[i] = ids[i], ids[i - 1]
            i += 1  # a transaction overtakes at most one
        i += 1
    return ids


def write_history(
    engine: sa.Engine, steps: list[tuple[str, int, int, int]], overtakes: Sequence[bool] = ()
) -> None:
    """Play the steps, one transaction each, then date each transaction on the clock.

    The transactions commit in step order; ``overtakes`` numbers some of them before the
    one committed just ahead of them (see :func:`interleaved_ids`).
    """
    when = START
    dated: list[dict[str, Any]] = []
    ids = interleaved_ids(len(steps), overtakes)
    with Session(engine) as session:
        packages: dict[int, models.Package] = {}
        maintainers: dict[int, models.Maintainer] = {}
        for n, (kind, p, m, gap) in enumerate(steps):
            when += timedelta(days=gap)
            take_id(session, ids[n])
            package = packages.get(p)
            if kind == "write" and package is None:
                packages[p] = models.Package(name=f"p{n}", summary=str(n))
                session.add(packages[p])
            elif kind == "write" and package is not None:
                package.summary = str(n)
            elif kind == "delete" and package is not None:
                session.delete(packages.pop(p))
            elif kind == "link" and package is not None:
                if m not in maintainers:
                    maintainers[m] = models.Maintainer(username=f"m{n}", email=f"m{n}@x.org")
                if maintainers[m] in package.maintainers:
                    package.maintainers.remove(maintainers[m])
                else:
                    package.maintainers.append(maintainers[m])
            else:  # an empty transaction
                session.execute(sa.insert(TX).values(id=ids[n], issued_at=when))
            session.commit()
            forget_id()  # a step that wrote nothing versioned took no id
            dated.append({"tx": ids[n], "when": when})
        session.execute(
            sa.update(TX)
            .where(TX.c.id == sa.bindparam("tx"))
            .values(issued_at=sa.bindparam("when")),
            dated,
        )
        session.commit()


def empty(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for table in reversed(models.Base.metadata.sorted_tables):
            conn.execute(sa.delete(plain(table)))
