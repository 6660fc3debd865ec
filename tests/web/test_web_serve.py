"""``vestige serve``: bad input is one line and exit 2; served, it answers over HTTP on
127.0.0.1 and only reads unless --allow-restore."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import sqlalchemy as sa
from click.testing import CliRunner

import models
from tests.support.live_server import vestige_serve
from tests.support.web_data import write_web_history
from tests.support.web_pages import text_of
from vestige.cli import app


def test_serve_refuses_a_missing_sqlite_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    result = CliRunner().invoke(app, ["serve"], env={"DATABASE_URL": f"sqlite:///{missing}"})
    assert result.exit_code == 2
    assert f"error: no database at {missing}" in result.stderr
    assert not missing.exists()


def test_serve_refuses_a_bad_port() -> None:
    result = CliRunner().invoke(app, ["serve", "--port", "70000"])
    assert result.exit_code == 2
    assert "70000 is not in the range 1<=x<=65535" in result.stderr


def test_served_it_reads_and_refuses_to_restore(db_url: str) -> None:
    engine = sa.create_engine(db_url)
    models.Base.metadata.create_all(engine)
    data = write_web_history(engine, many=3)
    engine.dispose()
    with vestige_serve(db_url) as base:
        assert base.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{base}/models/Package/record?key.id={data.demo}") as page:
            text = text_of(page.read().decode())
        assert "read-only" in text
        assert "A small, typed HTTP client" in text
        try:
            urllib.request.urlopen(f"{base}/models/Release/restore?key.id={data.deleted_release}")
            raise AssertionError("restore answered")
        except urllib.error.HTTPError as refused:
            assert refused.code == 403
            assert "restoring from the browser is off" in text_of(refused.read().decode())
