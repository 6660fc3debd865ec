"""One JSON shape for history: the Python API's ``to_dict()`` is what ``--json`` prints."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.orm import Session

import models
from vestige.cli import app
from vestige.cli.output import json_default
from vestige.history import changes, changes_dict, diff, history
from vestige.versioning import actor


def as_written(value: Any) -> Any:
    return json.loads(json.dumps(value, default=json_default))


def test_history_json_is_the_versions_to_dict(schema_engine: sa.Engine, db_url: str) -> None:
    with Session(schema_engine) as session:
        maintainer = models.Maintainer(username="ann", email="ann@example.org")
        session.add(maintainer)
        session.commit()
        with actor(user_id=maintainer.id, remote_addr="192.0.2.1"):
            package = models.Package(name="httpkit", summary="HTTP client")
            session.add(package)
            session.commit()
            package.summary = "A small HTTP client"
            session.commit()
        versions = history(session, models.Package, package.id)
        listed = changes(session, model=models.Package)
    result = CliRunner().invoke(
        app,
        ["history", "Package", str(package.id), "--json"],
        env={"DATABASE_URL": db_url},
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["versions"] == as_written([v.to_dict() for v in versions])
    assert printed["versions"][-1]["changes"] == {
        "summary": {"old": "HTTP client", "new": "A small HTTP client"}
    }
    assert printed["versions"][-1]["user"] == "ann"
    assert changes_dict(diff(versions[0], versions[-1])) == printed["versions"][-1]["changes"]
    touched = [t.to_dict() for t in listed]
    assert [t["touched"] for t in touched] == [
        [{"model": "Package", "key": [package.id], "operation": "insert"}],
        [{"model": "Package", "key": [package.id], "operation": "update"}],
    ]
    assert {t["user"] for t in touched} == {"ann"}
    assert {t["remote_addr"] for t in touched} == {"192.0.2.1"}
