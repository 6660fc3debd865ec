"""Where an archive lives: a directory or any fsspec URL (``s3://bucket/prefix``, ``memory://``).

Every failure of the storage (a bad URL, a missing protocol, permissions, a full disk)
becomes one :class:`~vestige.errors.ArchiveError` naming the URL and the cause.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import fsspec

from vestige.errors import ArchiveError

__all__ = ["ArchiveTarget", "open_target", "storage_errors"]

T = TypeVar("T")

BAD_URL = (
    "cannot open archive {url}: {cause}; give a directory or an fsspec URL (s3://bucket/prefix)"
)
FAILED = "archive {url}: {action} failed: {cause}"


@contextmanager
def storage_errors(url: str, action: str, failed: str = FAILED) -> Iterator[None]:
    """Turn any storage failure inside the block into one :class:`ArchiveError`."""
    try:
        yield
    except ArchiveError:
        raise
    except Exception as exc:  # fsspec back ends raise anything: OSError, botocore, ...
        cause = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ArchiveError(failed.format(url=url, action=action, cause=cause)) from exc


class ArchiveTarget:
    """An fsspec file system and the root directory of the archive in it.

    Attributes:
        url: The URL as given (printed in messages).
        fs: The fsspec file system.
        root: The archive's root path inside ``fs``.
    """

    def __init__(self, url: str, fs: Any, root: str) -> None:
        self.url = url
        self.fs = fs
        self.root = root.rstrip("/") or "/"

    @property
    def protocol(self) -> str:
        """The file system's first protocol name (``file``, ``memory``, ``s3``...)."""
        protocol = self.fs.protocol
        return str(protocol[0] if isinstance(protocol, tuple | list) else protocol)

    @property
    def local(self) -> bool:
        """Whether the archive is on a local disk (where ``fsync`` applies)."""
        return self.protocol in {"file", "local"}

    def path(self, relative: str) -> str:
        """The full path of ``relative`` (a ``/``-separated path under the root)."""
        return posixpath.join(self.root, relative)

    def exists(self, relative: str) -> bool:
        with storage_errors(self.url, f"reading {relative}"):
            return bool(self.fs.exists(self.path(relative)))

    def read(self, relative: str) -> bytes:
        with storage_errors(self.url, f"reading {relative}"):
            data: bytes = self.fs.cat_file(self.path(relative))
            return data

    def write(self, relative: str, data: bytes, *, durable: bool = True) -> None:
        """Write ``data`` to ``relative``, flushed and closed before this returns.

        Args:
            relative: The path under the archive root.
            data: The bytes.
            durable: On a local disk, also ``fsync`` the file, so that it survives a crash
                of the machine, not only of the process.
        """
        full = self.path(relative)
        with storage_errors(self.url, f"writing {relative}"):
            self.fs.makedirs(posixpath.dirname(full), exist_ok=True)
            with self.fs.open(full, "wb") as handle:
                handle.write(data)
                handle.flush()
                fileno: Callable[[], int] | None = getattr(handle, "fileno", None)
                if durable and fileno is not None and self.local:
                    os.fsync(fileno())

    def sync(self, relatives: Sequence[str]) -> None:
        """On a local disk, ``fsync`` files written with ``durable=False``, in this order.

        Written first and synced together, a batch's files cost about one flush of the
        file system's journal instead of one each. Other file systems (object stores)
        hold a file once it is closed: nothing to do.
        """
        if not self.local:
            return
        for relative in relatives:
            with storage_errors(self.url, f"writing {relative}"):
                descriptor = os.open(self.path(relative), os.O_RDONLY)
                try:
                    os.fsync(descriptor)
                finally:
                    os.close(descriptor)

    def replace(self, relative: str, data: bytes) -> None:
        """Write ``data`` to ``relative`` whole or not at all (a temporary file, then a move)."""
        temporary = relative + ".tmp"
        self.write(temporary, data)
        with storage_errors(self.url, f"writing {relative}"):
            self.fs.mv(self.path(temporary), self.path(relative))

    def remove(self, relative: str) -> None:
        with storage_errors(self.url, f"removing {relative}"):
            if self.fs.exists(self.path(relative)):
                self.fs.rm(self.path(relative))

    def size(self, relative: str) -> int:
        with storage_errors(self.url, f"reading {relative}"):
            return int(self.fs.size(self.path(relative)))

    def files(self) -> list[str]:
        """Every file under the root, as relative paths, sorted."""
        with storage_errors(self.url, "listing"):
            if not self.fs.exists(self.root):
                return []
            found = self.fs.find(self.root)
        prefix = self.root.rstrip("/") + "/"
        return sorted(str(path)[len(prefix) :] for path in found if str(path).startswith(prefix))

    def local_path(self, relative: str) -> str | None:
        """A path DuckDB can open directly, for local files; else ``None``."""
        if self.local:
            return self.path(relative)
        return None


def open_target(url: str) -> ArchiveTarget:
    """The archive at ``url``: a plain path, ``file://...`` or any fsspec URL.

    Raises:
        ArchiveError: The URL is malformed or names a protocol fsspec does not have.
    """
    if not url or not url.strip():
        raise ArchiveError(BAD_URL.format(url=repr(url), cause="the URL is empty"))
    with storage_errors(url, "opening", BAD_URL):
        fs, root = fsspec.core.url_to_fs(url)
    return ArchiveTarget(url, fs, str(root))
