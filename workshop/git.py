"""A few git commands, run in one repository, their output returned as text."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from workshop import messages
from workshop.errors import WorkshopUsageError


class Git:
    """The git repository whose working tree holds ``path``."""

    def __init__(self, path: Path) -> None:
        try:
            top = subprocess.run(
                ["git", "-C", str(path), "rev-parse", "--show-toplevel"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        except (subprocess.CalledProcessError, FileNotFoundError):
            raise WorkshopUsageError(messages.NOT_A_REPOSITORY.format(path=path)) from None
        self.root = Path(top)

    def run(
        self, *args: str, env: Mapping[str, str] | None = None, stdin: str | None = None
    ) -> str:
        """Run ``git ARGS`` at the root; its stdout, stripped. Raises on failure."""
        result = subprocess.run(
            ["git", *args],
            cwd=self.root,
            input=stdin,
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
        )
        if result.returncode != 0:
            raise subprocess.CalledProcessError(
                result.returncode, ["git", *args], result.stdout, result.stderr
            )
        return result.stdout.strip()

    def resolve(self, ref: str) -> str | None:
        """The commit ``ref`` names, or ``None`` when it names none."""
        try:
            return self.run("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
        except subprocess.CalledProcessError:
            return None

    def current_branch(self) -> str | None:
        """The checked-out branch, or ``None`` on a detached HEAD."""
        try:
            return self.run("symbolic-ref", "--quiet", "--short", "HEAD")
        except subprocess.CalledProcessError:
            return None

    def is_dirty(self) -> bool:
        """Whether the working tree has changes or untracked files (ignored ones aside)."""
        return bool(self.run("status", "--porcelain"))
