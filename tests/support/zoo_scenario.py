"""Write a history for every shape of the model zoo, then read it every way Vestige can.

    python -m tests.support.zoo_scenario DATABASE_URL RESULTS.json

Runs in a process of its own (see :mod:`tests.support.zoo_models`). Each reading of
Vestige (the Python API, the CLI's ``--json``, the restore plan, pruning, history read
back from the archive after an archiving prune) is compared with
what SQLAlchemy-Continuum itself loads through its version classes, record by record.
The results are one row per (reading, shape): whether every record of that shape agreed,
and the first disagreement; ``tests/test_model_zoo.py`` asserts them.
"""

from __future__ import annotations

import json
import sys
import tempfile
import uuid
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.orm import Session
from sqlalchemy_continuum import version_class

from tests.support import zoo_models as zoo
from vestige.cli import app
from vestige.cli.output import json_default
from vestige.errors import ConfigError
from vestige.history import Operation, Version, as_of, changes, diff, history
from vestige.history.restore import plan_restore
from vestige.retention import prune
from vestige.retention.engine import MIXED_HIERARCHY
from vestige.retention.policy import parse_policy
from vestige.versioning import context, versioning_manager

MODULE = "tests.support.zoo_models"
TOKEN = uuid.UUID("00000000-0000-4000-8000-00000000000a")
EPOCH = datetime(2026, 1, 1, 12, 0, 0)

#: Shape name -> the classes whose records are read, and the records' keys per class.
SHAPES: dict[str, list[type[Any]]] = {
    "uuid key": [zoo.Token],
    "composite key": [zoo.Sku],
    "joined inheritance": [zoo.Document, zoo.Invoice, zoo.Credit],
    "single-table inheritance": [zoo.Party, zoo.Person, zoo.Company],
    "many-to-many": [zoo.Article, zoo.Tag],
    "keyword columns": [zoo.Clause],
    "json numeric tz": [zoo.Event],
}
KEYS: dict[type[Any], list[Any]] = {
    zoo.Token: [TOKEN],
    zoo.Sku: [("acme", 1), ("acme", 2)],
    zoo.Document: [1, 2, 3],
    zoo.Invoice: [2, 3, 1],  # 1 is a plain Document: no Invoice history
    zoo.Credit: [3, 2],
    zoo.Party: [10, 11],
    zoo.Person: [10, 11],  # 11 is a Company
    zoo.Company: [11],
    zoo.Article: [1],
    zoo.Tag: [1, 2],
    zoo.Clause: [1],
    zoo.Event: [1],
}


def write_history(engine: sa.Engine) -> None:
    """Five transactions touching every shape, a minute apart."""
    aware = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)

    def insert(session: Session) -> None:
        tags = [zoo.Tag(id=1, name="orm"), zoo.Tag(id=2, name="sql")]
        session.add_all(
            [
                zoo.Token(id=TOKEN, label="first"),
                zoo.Sku(vendor="acme", code=1, price=Decimal("9.99")),
                zoo.Sku(vendor="acme", code=2, price=Decimal("1.50")),
                zoo.Document(id=1, title="memo"),
                zoo.Invoice(id=2, title="inv", amount=100),
                zoo.Credit(id=3, title="cr", amount=-5, reason="refund"),
                zoo.Person(id=10, name="ann"),
                zoo.Company(id=11, name="acme inc"),
                *tags,
                zoo.Article(id=1, headline="news", tags=[tags[0]]),
                zoo.Clause(id=1, select="a", from_="b", order=1, user="root"),
                zoo.Event(
                    id=1,
                    payload={"a": [1, 2]},
                    amount=Decimal("1.2345"),
                    at=aware,
                    level=zoo.Level.LOW,
                    code="EV-1",
                ),
            ]
        )

    def update(session: Session) -> None:
        get(session, zoo.Token, TOKEN).label = "second"
        get(session, zoo.Sku, ("acme", 1)).price = Decimal("10.00")
        get(session, zoo.Document, 1).title = "memo 2"
        get(session, zoo.Invoice, 2).title = "inv 2"  # a parent column only
        get(session, zoo.Credit, 3).amount = -7  # a middle column only
        get(session, zoo.Person, 10).name = "ann b"
        get(session, zoo.Clause, 1).select = "c"
        event = get(session, zoo.Event, 1)
        event.payload = {"a": [1, 2, 3], "quote": 'it\'s "x"'}
        event.amount = Decimal("2.5000")
        event.at = aware + timedelta(hours=1)
        event.level = zoo.Level.HIGH
        event.code = "EV-2"

    def more(session: Session) -> None:
        get(session, zoo.Invoice, 2).amount = 150  # a child column only
        credit = get(session, zoo.Credit, 3)
        credit.reason, credit.title = "error", "cr 2"  # the top and the bottom level
        article = get(session, zoo.Article, 1)
        article.tags.append(get(session, zoo.Tag, 2))
        article.headline = "news 2"
        get(session, zoo.Company, 11).name = "acme ltd"

    def delete(session: Session) -> None:
        session.delete(get(session, zoo.Sku, ("acme", 1)))
        session.delete(get(session, zoo.Invoice, 2))
        session.delete(get(session, zoo.Person, 10))
        article = get(session, zoo.Article, 1)
        article.tags.remove(get(session, zoo.Tag, 1))

    def again(session: Session) -> None:
        session.add(zoo.Sku(vendor="acme", code=1, price=Decimal("12.00")))
        get(session, zoo.Credit, 3).title = "cr 3"

    steps: list[Callable[[Session], None]] = [insert, update, more, delete, again]
    with Session(engine) as session:
        for number, step in enumerate(steps):
            # no user table in the zoo (user_cls=None): the user goes into the JSON context
            with context(user="zoo", request_id=f"step-{number}", step=number):
                step(session)
                session.commit()
        tx = versioning_manager.transaction_cls.__table__
        for minute, tx_id in enumerate(sorted(session.scalars(sa.select(tx.c.id)))):
            session.execute(
                sa.update(tx)
                .where(tx.c.id == tx_id)
                .values(issued_at=EPOCH + timedelta(minutes=minute))
            )
        session.commit()


def get(session: Session, model: type[Any], key: Any) -> Any:
    found = session.get(model, key)
    assert found is not None, (model, key)
    return found


# --- what Continuum says ------------------------------------------------------------------


def value_fields(model: type[Any]) -> list[str]:
    """The column attributes a version of ``model`` carries, as Vestige reports them."""
    internal = {"transaction_id", "end_transaction_id", "operation_type"}
    mapper = sa.inspect(version_class(model))
    return [prop.key for prop in mapper.column_attrs if prop.key not in internal]


def key_filter(model: type[Any], key: Any) -> list[sa.ColumnElement[bool]]:
    version = version_class(model)
    names = [sa.inspect(model).get_property_by_column(c).key for c in sa.inspect(model).primary_key]
    values = key if isinstance(key, tuple) else (key,)
    return [getattr(version, name) == value for name, value in zip(names, values, strict=True)]


def continuum_versions(session: Session, model: type[Any], key: Any) -> list[dict[str, Any]]:
    """The record's versions as Continuum's version class loads them, in commit order."""
    objects = session.query(version_class(model)).filter(*key_filter(model, key)).all()
    fields = value_fields(model)
    rows = [
        {
            "transaction_id": v.transaction_id,
            "end_transaction_id": v.end_transaction_id,
            "operation": Operation.from_type(v.operation_type).value,
            "values": {name: getattr(v, name) for name in fields},
        }
        for v in objects
    ]
    by_tx = {row["transaction_id"]: row for row in rows}
    ends = {row["end_transaction_id"] for row in rows}
    chain = [row for row in rows if row["transaction_id"] not in ends]
    while chain and chain[-1]["end_transaction_id"] in by_tx:
        chain.append(by_tx[chain[-1]["end_transaction_id"]])
    assert len(chain) == len(rows), (model, key, rows)
    return chain


def ours(versions: list[Version]) -> list[dict[str, Any]]:
    return [
        {
            "transaction_id": v.transaction_id,
            "end_transaction_id": v.end_transaction_id,
            "operation": v.operation.value,
            "values": dict(v.values),
        }
        for v in versions
    ]


def expected_changes(chain: list[dict[str, Any]]) -> list[dict[str, list[Any]]]:
    found: list[dict[str, list[Any]]] = []
    previous: dict[str, Any] | None = None
    for row in chain:
        values = row["values"]
        if row["operation"] == "delete":
            found.append({})
        elif row["operation"] == "insert" or previous is None:
            found.append({k: [None, v] for k, v in values.items() if v is not None})
        else:
            found.append({k: [previous[k], v] for k, v in values.items() if previous[k] != v})
        previous = values
    return found


def in_force(chain: list[dict[str, Any]], tx_id: int) -> dict[str, Any] | None:
    """Continuum's answer for "as of transaction tx_id" on a history in id order."""
    written = [row for row in chain if row["transaction_id"] <= tx_id]
    if not written or written[-1]["operation"] == "delete":
        return None
    values: dict[str, Any] = written[-1]["values"]
    return values


def as_json(value: Any) -> Any:
    """``value`` as the CLI writes it."""
    return json.loads(json.dumps(value, default=json_default))


# --- the checks -----------------------------------------------------------------------------


class Results:
    """One row per (reading, shape): agreed everywhere, or the first disagreement."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], str | None] = {}

    def check(self, reading: str, shape: str, found: Any, expected: Any, where: str) -> None:
        key = (reading, shape)
        if self.rows.get(key) is None and found != expected:
            self.rows[key] = f"{where}: Vestige {found!r} != Continuum {expected!r}"[:2000]
        else:
            self.rows.setdefault(key, None)


def records() -> Iterator[tuple[str, type[Any], Any]]:
    for shape, classes in SHAPES.items():
        for model in classes:
            for key in KEYS[model]:
                yield shape, model, key


def cli(url: str, *args: str) -> Any:
    arguments = [*args, "--json", "--models", MODULE]
    result = CliRunner().invoke(app, arguments, env={"DATABASE_URL": url})
    if result.exit_code != 0:
        return f"exit {result.exit_code}: {result.output.strip()}"
    return json.loads(result.stdout)


def key_text(key: Any) -> str:
    return ",".join(str(part) for part in key) if isinstance(key, tuple) else str(key)


def read_everything(url: str, engine: sa.Engine, results: Results) -> None:
    with Session(engine) as session:
        tx = versioning_manager.transaction_cls.__table__
        issued: dict[int, datetime] = {
            tx_id: when for tx_id, when in session.execute(sa.select(tx.c.id, tx.c.issued_at))
        }
        tx_ids = sorted(issued)
        issued[0] = EPOCH - timedelta(hours=1)
        issued[tx_ids[-1] + 1] = issued[tx_ids[-1]] + timedelta(hours=1)
        for shape, model, key in records():
            where = f"{model.__name__} {key_text(key)}"
            truth = continuum_versions(session, model, key)
            versions = history(session, model, key)
            results.check("history", shape, ours(versions), truth, where)
            results.check(
                "history changes",
                shape,
                [{c.field: [c.old, c.new] for c in v.changes} for v in versions],
                expected_changes(truth),
                where,
            )
            results.check(
                "history limit 2",
                shape,
                ours(history(session, model, key, limit=2)),
                truth[-2:],
                where,
            )
            for tx_id in [0, *tx_ids, tx_ids[-1] + 1]:
                found = as_of(session, model, key, tx_id)
                results.check(
                    "as_of transaction",
                    shape,
                    None if found is None else dict(found.values),
                    in_force(truth, tx_id),
                    f"{where} at {tx_id}",
                )
                moment = issued[tx_id] + timedelta(seconds=30)
                found = as_of(session, model, key, moment)
                results.check(
                    "as_of time",
                    shape,
                    None if found is None else dict(found.values),
                    in_force(truth, tx_id),
                    f"{where} at {moment}",
                )
            if len(versions) >= 2 and len(truth) >= 2:
                results.check(
                    "diff",
                    shape,
                    {c.field: [c.old, c.new] for c in diff(versions[0], versions[-1])},
                    {
                        k: [truth[0]["values"][k], v]
                        for k, v in truth[-1]["values"].items()
                        if truth[0]["values"][k] != v
                    },
                    where,
                )
            read_context(session, results, shape, model, key, versions)
            read_cli(url, results, shape, model, key, truth)
            if truth and truth[-1]["operation"] != "delete" and len(truth) >= 2:
                plan = plan_restore(session, model, key, to=truth[0]["transaction_id"])
                results.check(
                    "restore plan",
                    shape,
                    dict(plan.target.values),
                    truth[0]["values"],
                    where,
                )
        read_changes(session, results)


def read_context(
    session: Session,
    results: Results,
    shape: str,
    model: type[Any],
    key: Any,
    versions: list[Version],
) -> None:
    """Each version's context is its transaction's, and ``changes(context=...)`` finds it."""
    where = f"{model.__name__} {key_text(key)}"
    transaction_cls = versioning_manager.transaction_cls
    for version in versions:
        stored = session.get(transaction_cls, version.transaction_id).context
        number = int(stored["request_id"].removeprefix("step-"))
        expected = {"user": "zoo", "request_id": f"step-{number}", "step": number}
        results.check("context", shape, dict(version.context), stored, where)
        results.check("context", shape, stored, expected, where)
        found = changes(session, model=model, context={"step": number, "user": "zoo"})
        results.check(
            "changes(context=...)",
            shape,
            [tx.transaction_id for tx in found],
            [version.transaction_id],
            where,
        )


def read_cli(
    url: str, results: Results, shape: str, model: type[Any], key: Any, truth: list[dict[str, Any]]
) -> None:
    where = f"{model.__name__} {key_text(key)}"
    name, text = model.__name__, key_text(key)
    found = cli(url, "history", name, text)
    expected = {
        "model": name,
        "key": as_json(list(key) if isinstance(key, tuple) else [key]),
        "versions": [
            {"transaction_id": row["transaction_id"], "operation": row["operation"]}
            | {"values": as_json(row["values"])}
            for row in truth
        ],
    }
    if isinstance(found, dict):
        found = {
            **found,
            "versions": [
                {k: v[k] for k in ("transaction_id", "operation", "values")}
                for v in found["versions"]
            ],
        }
    if not truth:  # no history: the CLI says so and exits 3 or so; nothing to compare
        results.check("cli history --json", shape, isinstance(found, str), True, where)
        return
    results.check("cli history --json", shape, found, expected, where)
    last = truth[-1]
    if last["operation"] != "delete":
        found = cli(url, "history", name, text, "--as-of", str(last["transaction_id"]))
        results.check(
            "cli --as-of --json",
            shape,
            found["values"] if isinstance(found, dict) else found,
            as_json(last["values"]),
            where,
        )
    if len(truth) >= 2 and last["operation"] != "delete":
        first = truth[0]
        between = [str(first["transaction_id"]), str(last["transaction_id"])]
        found = cli(url, "history", name, text, "--diff", *between)
        results.check(
            "cli --diff --json",
            shape,
            found["changes"] if isinstance(found, dict) else found,
            as_json(
                {
                    k: {"old": first["values"][k], "new": v}
                    for k, v in last["values"].items()
                    if first["values"][k] != v
                }
            ),
            where,
        )


def read_changes(session: Session, results: Results) -> None:
    """``changes()``: every record labelled with its own class, and the model filter."""
    touched: dict[int, set[tuple[str, Any]]] = defaultdict(set)
    by_class: dict[type[Any], set[int]] = defaultdict(set)
    shape_of = {model: shape for shape, classes in SHAPES.items() for model in classes}
    for model in shape_of:
        if sa.inspect(model).inherits is not None:
            continue
        for version in session.query(version_class(model)).all():
            live_class = next(
                m for m in shape_of if version_class(m) is type(version)
            )  # the version class Continuum loaded is the record's own
            key = tuple(
                getattr(version, sa.inspect(model).get_property_by_column(c).key)
                for c in sa.inspect(model).primary_key
            )
            touched[version.transaction_id].add((live_class.__name__, key))
            for cls in live_class.__mro__:
                if cls in shape_of:
                    by_class[cls].add(version.transaction_id)
    listed = changes(session, limit=None)
    found: dict[int, set[tuple[str, Any]]] = defaultdict(set)
    for transaction in listed:
        for record in transaction.touched:
            if record.model in {m.__name__ for m in shape_of}:
                found[transaction.transaction_id].add((record.model, record.key))
    for model, shape in shape_of.items():
        name = model.__name__
        results.check(
            "changes",
            shape,
            {tx: {r for r in rs if r[0] == name} for tx, rs in found.items()},
            {tx: {r for r in rs if r[0] == name} for tx, rs in touched.items()},
            name,
        )
        filtered = {t.transaction_id for t in changes(session, model=model, limit=None)}
        results.check("changes(model=...)", shape, filtered, by_class[model], name)


def prune_and_read(engine: sa.Engine, results: Results) -> None:
    """Keep one version of every record: history is still what Continuum reads, and the
    open version of every live record is still its live row (H1)."""
    for name, shape in [("Invoice", "joined inheritance"), ("Person", "single-table inheritance")]:
        mixed = parse_policy({"keep_days": 0, "models": {name: {"keep_days": 5}}})
        try:
            prune(engine, mixed, pause=0, dry_run=True)
            refused = "pruned"
        except ConfigError as exc:
            refused = str(exc).split(":")[0]
        results.check(
            "prune",
            shape,
            refused,
            MIXED_HIERARCHY.split(":")[0].format(
                model=name, root="Document" if name == "Invoice" else "Party"
            ),
            f"a policy for {name} alone",
        )
    with Session(engine) as session:
        before = {
            (model, key_text(key)): [v.to_dict() for v in history(session, model, key)]
            for _, model, key in records()
        }
    archive = tempfile.mkdtemp(prefix="zoo-archive-")
    policy = parse_policy({"keep_days": 0, "keep_versions": 1})
    report = prune(engine, policy, pause=0, archive=archive)
    labels = {table.table for table in report.tables}
    results.check("prune", "single-table inheritance", "party_version" in labels, True, "report")
    with Session(engine) as session:
        for shape, model, key in records():
            where = f"{model.__name__} {key_text(key)}"
            truth = continuum_versions(session, model, key)
            results.check("prune", shape, ours(history(session, model, key)), truth, where)
            results.check(
                "archive",
                shape,
                [v.to_dict() for v in history(session, model, key, archive=archive)],
                before[(model, key_text(key))],
                where,
            )
            live = session.get(model, key)
            if isinstance(live, model):
                fields = value_fields(model)
                results.check(
                    "prune",
                    shape,
                    [{f: getattr(live, f) for f in fields}, len(truth)],
                    [truth[-1]["values"], 1],
                    f"{where} live",
                )


def main() -> None:
    url, out = sys.argv[1], sys.argv[2]
    warnings.simplefilter("error", sa.exc.SAWarning)  # a cartesian product is a failure
    engine = sa.create_engine(url)
    zoo.Base.metadata.create_all(engine)
    write_history(engine)
    results = Results()
    read_everything(url, engine, results)
    prune_and_read(engine, results)
    engine.dispose()
    with open(out, "w") as handle:
        json.dump(
            [
                {"reading": reading, "shape": shape, "problem": problem}
                for (reading, shape), problem in sorted(results.rows.items())
            ],
            handle,
            indent=1,
        )


if __name__ == "__main__":
    main()
