"""The history browser over every shape of the model zoo, page by page.

    python -m tests.support.zoo_web DATABASE_URL RESULTS.json

Runs in a process of its own, as :mod:`tests.support.zoo_scenario` does (whose history
it writes). Before the tables are made, the zoo's ``transaction`` table gets a column the
browser has never heard of (``request_id``): the pages must show it all the same. Each
page is compared with what SQLAlchemy-Continuum's own version classes hold; the results
are one row per (page, shape), asserted by ``tests/web/test_web_zoo.py``.
"""

from __future__ import annotations

import json
import sys
import warnings
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from tests.support import zoo_models as zoo
from tests.support.web_pages import form_fields, rows, text_of
from tests.support.zoo_scenario import (
    Results,
    continuum_versions,
    expected_changes,
    in_force,
    records,
    write_history,
)
from vestige.history import history, versions_page
from vestige.history.queries import normalize_key
from vestige.versioning import versioning_manager
from vestige.web import create_app
from vestige.web.present import key_query, show_value, with_query

PAGES = (
    "record page",
    "record paged",
    "context column",
    "diff page",
    "as-of page",
    "transaction page",
    "deleted page",
    "restore plan page",
)


def read_pages(client: TestClient, engine: sa.Engine, results: Results) -> None:
    with Session(engine) as session:
        tx_ids = sorted(session.scalars(sa.select(versioning_manager.transaction_cls.id)))
        for shape, model, key in records():
            name = model.__name__
            record = normalize_key(model, key)
            where = f"{name} {record}"
            params = key_query(model, record)
            truth = continuum_versions(session, model, key)
            page = client.get(with_query(f"/models/{name}/record", key=params))
            shown = [row[2] for row in rows(page.text) if len(row) > 2 and row[2][:1] == "#"]
            results.check(
                "record page",
                shape,
                (page.status_code, shown),
                (200 if truth else 404, [f"#{row['transaction_id']}" for row in reversed(truth)]),
                where,
            )
            results.check(
                "context column",
                shape,
                [f"req-{row['transaction_id']}" in page.text for row in truth],
                [True] * len(truth),
                where,
            )
            paged: list[Any] = []
            cursor = None
            while True:
                found = versions_page(session, model, key=key, before=cursor, limit=2)
                paged.extend(found.items)
                if found.older is None:
                    break
                cursor = found.older
            results.check(
                "record paged",
                shape,
                [
                    (v.transaction_id, {c.field: [c.old, c.new] for c in v.changes})
                    for v in reversed(paged)
                ],
                list(
                    zip(
                        [row["transaction_id"] for row in truth],
                        expected_changes(truth),
                        strict=True,
                    )
                ),
                where,
            )
            if len(truth) >= 2:
                first, last = truth[0], truth[-1]
                diff = client.get(
                    with_query(
                        f"/models/{name}/diff",
                        key=params,
                        a=first["transaction_id"],
                        b=last["transaction_id"],
                    )
                )
                marked = {row[0].split()[0] for row in rows(diff.text)[1:] if "changed" in row[0]}
                results.check(
                    "diff page",
                    shape,
                    (diff.status_code, marked),
                    (
                        200,
                        {k for k, v in last["values"].items() if first["values"][k] != v},
                    ),
                    where,
                )
            for tx_id in tx_ids:
                as_of = client.get(with_query(f"/models/{name}/as-of", key=params, at=tx_id))
                expected = in_force(truth, tx_id)
                values = {row[0]: row[1] for row in rows(as_of.text)[1:]}
                results.check(
                    "as-of page",
                    shape,
                    (as_of.status_code, values or None),
                    (
                        200,
                        None
                        if expected is None
                        else {
                            k: "NULL" if v is None else " ".join(show_value(v).split())
                            for k, v in expected.items()
                        },
                    ),
                    f"{where} at {tx_id}",
                )
            deleted = client.get(f"/models/{name}/deleted")
            listed = f"{name} {','.join(str(part) for part in record)}" in {
                row[0] for row in rows(deleted.text)[1:]
            }
            results.check(
                "deleted page",
                shape,
                (deleted.status_code, listed),
                (200, bool(truth) and truth[-1]["operation"] == "delete"),
                where,
            )
            if truth and truth[-1]["operation"] != "delete" and len(truth) >= 2:
                plan = client.get(
                    with_query(f"/models/{name}/restore", key=params, to=truth[0]["transaction_id"])
                )
                fields = form_fields(plan.text)
                results.check(
                    "restore plan page",
                    shape,
                    (plan.status_code, fields.get("to"), "row(s) to write" in text_of(plan.text)),
                    (200, str(truth[0]["transaction_id"]), True),
                    where,
                )
        for tx_id in tx_ids:
            page = client.get(f"/transactions/{tx_id}")
            shown = {(row[0], row[1], row[2]) for row in rows(page.text)[1:] if len(row) == 3}
            for shape, model, key in records():
                record = normalize_key(model, key)
                versions = history(session, model, key)
                wrote = [v for v in versions if v.transaction_id == tx_id]
                if not wrote:
                    continue
                label = ",".join(str(part) for part in record)
                found = any(row[1] == label and row[2] == wrote[0].operation.value for row in shown)
                results.check(
                    "transaction page",
                    shape,
                    (page.status_code, found, f"req-{tx_id}" in page.text),
                    (200, True, True),
                    f"{model.__name__} {label} in transaction {tx_id}",
                )


def main() -> None:
    url, out = sys.argv[1], sys.argv[2]
    warnings.simplefilter("error", sa.exc.SAWarning)
    transaction = versioning_manager.transaction_cls.__table__
    transaction.append_column(sa.Column("request_id", sa.String(40)))
    engine = sa.create_engine(url)
    zoo.Base.metadata.create_all(engine)
    write_history(engine)
    with engine.begin() as connection:
        connection.execute(
            transaction.update().values(
                request_id=sa.literal("req-") + sa.cast(transaction.c.id, sa.String)
            )
        )
    app = create_app(engine, authorize=lambda request, permission: True, allow_restore=True)
    results = Results()
    with TestClient(app) as client:
        read_pages(client, engine, results)
    engine.dispose()
    with open(out, "w") as handle:
        json.dump(
            [
                {"page": page, "shape": shape, "problem": problem}
                for (page, shape), problem in sorted(results.rows.items())
            ],
            handle,
            indent=1,
        )


if __name__ == "__main__":
    main()
