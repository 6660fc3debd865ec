"""Concurrent flushes over overlapping records on PostgreSQL: no deadlock, intact history.

Continuum gives a transaction its id at its first flush, so two writers of one record can
commit in the opposite order of their ids. Vestige's close keeps one open version per
record (H1) and one unbroken ``end_transaction_id`` chain in commit order; ordering that
chain by id (H2 as written) cannot hold then, with stock Continuum or with Vestige.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

import models
from tests.support.history_invariants import history_problems
from vestige.versioning.bulk import install_bulk_write_guard

THREADS = 4
ROUNDS = 4
RECORDS = 18


@pytest.fixture
def version_mode() -> Iterator[None]:
    install_bulk_write_guard("version")
    yield
    install_bulk_write_guard("warn")


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_overlapping_concurrent_flushes_do_not_deadlock(
    schema_engine: sa.Engine, version_mode: None
) -> None:
    with Session(schema_engine) as session:
        session.add_all(models.Package(name=f"pkg{i}", summary="0") for i in range(RECORDS))
        session.commit()
        ids = session.scalars(sa.select(models.Package.id)).all()

    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def work(number: int) -> None:
        rng = random.Random(number)
        try:
            for round_ in range(ROUNDS):
                # Overlapping sets, each listed in its own order.
                chosen = rng.sample(ids, RECORDS * 2 // 3)
                with Session(schema_engine) as session:
                    barrier.wait(timeout=60)
                    if round_ % 2:
                        session.execute(
                            sa.update(models.Package)
                            .where(models.Package.id.in_(chosen))
                            .values(summary=f"bulk {number}.{round_}")
                        )
                    else:
                        loaded = {
                            package.id: package
                            for package in session.scalars(
                                sa.select(models.Package).where(models.Package.id.in_(chosen))
                            )
                        }
                        for key in chosen:  # one flush: changed in this order
                            loaded[key].summary = f"orm {number}.{round_}"
                        session.flush()
                    session.commit()
        except BaseException as exc:  # reported to the main thread below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert [str(e) for e in errors] == []
    with schema_engine.connect() as conn:
        assert history_problems(conn, commit_order=True) == []
        versions = conn.execute(sa.select(sa.func.count()).select_from(models.PackageVersion))
        assert versions.scalar_one() > RECORDS * ROUNDS
