"""Ctrl-C and SIGTERM during ``vestige prune``: a real process, a real signal.

The pruner runs in a subprocess with a test-only switch that makes it pause after its
first committed batch, say so on stderr and wait for a line on stdin. The test waits for
that line, sends the signal, waits for the pruner to acknowledge it, then lets it go on:
every step is ordered by the pruner's own output, never by a timer.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support.project import ROOT
from tests.support.retention_data import (
    PACKAGE_VERSION_TABLE,
    history,
    history_engine,
    history_problems,
    history_url,
    policy_file,
    postgres_history_url,
    restore,
    snapshot,
    sqlite_history_template,
)
from vestige.cli.prune import INTERRUPTED, PAUSE_AFTER_FIRST_BATCH, PAUSED, STOPPING
from vestige.errors import ExitCode

# fixtures, imported to be found
__all__ = [
    "history",
    "history_engine",
    "history_url",
    "policy_file",
    "postgres_history_url",
    "sqlite_history_template",
]

TIMEOUT = 120


def start_pruner(url: str, policy: Path, *, pause: bool) -> subprocess.Popen[str]:
    env = {**os.environ, "DATABASE_URL": url}
    if pause:
        env[PAUSE_AFTER_FIRST_BATCH] = "1"
    command = [sys.executable, "-c", "from vestige.cli import app; app()"]
    args = ["prune", "--yes", "--json", "--batch-size", "1", "--policy", str(policy)]
    return subprocess.Popen(
        [*command, *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def package_versions(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        count = sa.select(sa.func.count()).select_from(PACKAGE_VERSION_TABLE)
        return int(conn.execute(count).scalar_one())


def interrupt_after_first_batch(
    url: str, policy: Path, signals: list[signal.Signals]
) -> tuple[int, str, str]:
    """Run a pruner, send ``signals`` once it paused after batch 1; its code, stdout, stderr."""
    pruner = start_pruner(url, policy, pause=True)
    assert pruner.stderr is not None and pruner.stdin is not None
    try:
        assert pruner.stderr.readline() == PAUSED + "\n"
        pruner.send_signal(signals[0])
        assert pruner.stderr.readline() == STOPPING + "\n"
        for signum in signals[1:]:
            pruner.send_signal(signum)
        if len(signals) == 1:
            pruner.stdin.write("\n")
        out, err = pruner.communicate(timeout=TIMEOUT)
    finally:
        if pruner.poll() is None:
            pruner.kill()
            pruner.wait()
    return pruner.returncode, out, err


@pytest.mark.parametrize(
    "signals",
    [[signal.SIGINT], [signal.SIGTERM], [signal.SIGINT, signal.SIGINT]],
    ids=["ctrl-c", "sigterm", "ctrl-c twice"],
)
def test_a_signal_stops_prune_after_the_current_batch_and_a_rerun_finishes(
    history: sa.Engine, history_url: str, policy_file: Path, signals: list[signal.Signals]
) -> None:
    before = snapshot(history)
    code, out, err = interrupt_after_first_batch(history_url, policy_file, signals)

    message = INTERRUPTED.format(batches="1 committed batch")
    assert (code, err) == (ExitCode.INTERRUPTED, f"error: {message}\n")
    report = json.loads(out)
    assert (report["error"], report["exit_code"]) == (message, 130)
    assert (report["interrupted"], report["committed_batches"]) == (True, 1)
    assert {"table": "package_version", "deleted": 1} in report["tables"]
    assert report["transactions_deleted"] == 0
    # what was committed stays, and the history is whole
    assert package_versions(history) == 14
    assert history_problems(history) == []

    rerun = start_pruner(history_url, policy_file, pause=False)
    out, err = rerun.communicate(timeout=TIMEOUT)
    assert (rerun.returncode, err) == (0, "")
    assert json.loads(out)["transactions_deleted"] == 6
    interrupted_then_rerun = snapshot(history)

    restore(history, before)
    whole = start_pruner(history_url, policy_file, pause=False)
    assert whole.communicate(timeout=TIMEOUT)[1] == ""
    assert snapshot(history) == interrupted_then_rerun
    assert package_versions(history) == 9
