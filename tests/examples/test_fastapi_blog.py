"""The example FastAPI blog (examples/fastapi_blog) works, on SQLite and PostgreSQL.

It declares its own versioned models, so it runs in a process of its own
(:mod:`tests.support.blog_scenario`) through FastAPI's TestClient; this test asserts what
its API answered.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.project import ROOT

HEX_ID = re.compile(r"[0-9a-f]{32}")


def _run(db_url: str, tmp_path: Path) -> dict[str, Any]:
    out = tmp_path / "blog.json"
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.blog_scenario", db_url, str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    results: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return results


def test_blog_records_user_and_request_id_and_serves_history(db_url: str, tmp_path: Path) -> None:
    results = _run(db_url, tmp_path)
    assert results["create"]["status"] == 201
    assert results["create"]["request_id"] == "req-create"
    edit_id = results["edit"]["request_id"]
    assert HEX_ID.fullmatch(edit_id)

    history = results["history"]
    assert history["status"] == 200
    versions = history["body"]["versions"]
    assert [v["operation"] for v in versions] == ["insert", "update"]
    assert [v["context"] for v in versions] == [
        {"user": "ann", "request_id": "req-create"},
        {"user": "bob", "request_id": edit_id},
    ]
    assert [v["remote_addr"] for v in versions] == ["testclient", "testclient"]
    assert versions[1]["changes"] == {
        "title": {"old": "Hello", "new": "Hello, world"},
        "body": {"old": "", "new": "Hi"},
    }
    assert versions[1]["values"]["title"] == "Hello, world"

    (edit,) = results["changes of edit"]["body"]
    assert edit["context"] == {"user": "bob", "request_id": edit_id}
    assert [(t["model"], t["operation"]) for t in edit["touched"]] == [("Post", "update")]

    assert results["delete"]["status"] == 204
    after = results["history after delete"]["body"]["versions"]
    assert [v["operation"] for v in after] == ["insert", "update", "delete"]
    assert after[-1]["context"]["user"] == "ann"
    assert results["no history"]["status"] == 404
