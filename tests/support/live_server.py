"""``vestige serve`` in a process of its own, on a free port, for the browser tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.project import ROOT

#: How long the server may take to listen before the test fails (it is polled, not slept).
STARTUP_SECONDS = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def vestige_serve(database_url: str, *args: str) -> Iterator[str]:
    """Run ``vestige serve ARGS`` on ``database_url``; yield its base URL; stop it."""
    port = free_port()
    command = [
        sys.executable,
        "-c",
        "from vestige.cli import app; app()",
        "serve",
        "--port",
        str(port),
        *args,
    ]
    env = {**os.environ, "DATABASE_URL": database_url}
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                output = process.stdout.read() if process.stdout else ""
                raise AssertionError(f"vestige serve exited {process.returncode}: {output}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError as exc:
                if time.monotonic() > deadline:
                    message = f"vestige serve did not listen within {STARTUP_SECONDS}s"
                    raise AssertionError(message) from exc
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()
