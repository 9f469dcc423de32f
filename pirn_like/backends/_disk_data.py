"""Values kept as files in a local directory."""

from __future__ import annotations

import os
import tempfile
from contextlib import suppress
from pathlib import Path
from typing import Self
from urllib.parse import unquote, urlsplit

import anyio.to_thread

from pirn_like.backends._blob_data import BlobDataStore
from pirn_like.protocols import Serializer

__all__ = ["LocalDiskDataStore"]


class LocalDiskDataStore(BlobDataStore):
    """A DataStore with one file per value under ``root``: ``<root>/ab/cd/<hex>``, where
    ``ab`` and ``cd`` are the first hex digits of the hash (so no directory grows huge).

    Writes are atomic and durable: the bytes go to a temporary file beside the target,
    are flushed and fsynced, renamed over the target, and the directory is fsynced. A
    crash leaves at most a stray ``.*.tmp`` file, which the store ignores; a value file
    is either absent or complete. File I/O runs in worker threads.
    """

    def __init__(
        self, root: str | os.PathLike[str], *, serializer: Serializer | None = None
    ) -> None:
        self._root = Path(os.path.abspath(root))
        super().__init__(url=self._root.as_uri(), serializer=serializer)

    @classmethod
    def from_url(cls, url: str, *, serializer: Serializer | None = None) -> Self:
        """``file:///absolute/dir`` (a relative directory is not accepted in a URL:
        pass it to the constructor instead)."""
        parts = urlsplit(url)
        if (
            parts.scheme.lower() != "file"
            or parts.netloc not in ("", "localhost")
            or not parts.path.startswith("/")
            or parts.query
        ):
            raise ValueError(
                f"{url!r} is not a data store URL of the form file:///absolute/dir; "
                "for a relative directory use LocalDiskDataStore('relative/dir')"
            )
        return cls(unquote(parts.path), serializer=serializer)

    @property
    def root(self) -> Path:
        """The directory holding the values (absolute)."""
        return self._root

    def _path(self, hex_: str) -> Path:
        return self._root / hex_[:2] / hex_[2:4] / hex_

    async def _open(self) -> None:
        self._driver_errors = (OSError,)
        await anyio.to_thread.run_sync(lambda: self._root.mkdir(parents=True, exist_ok=True))

    async def _close(self) -> None:
        return None

    async def _read(self, hex_: str) -> bytes | None:
        return await anyio.to_thread.run_sync(_read_file, self._path(hex_))

    async def _write(self, hex_: str, data: bytes) -> None:
        await anyio.to_thread.run_sync(_write_file, self._path(hex_), data)

    async def _exists(self, hex_: str) -> bool:
        return await anyio.to_thread.run_sync(self._path(hex_).is_file)

    async def _remove(self, hex_: str) -> bool:
        return await anyio.to_thread.run_sync(_remove_file, self._path(hex_))


def _read_file(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _write_file(path: Path, data: bytes) -> None:
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    _fsync_directory(directory)


def _remove_file(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    _fsync_directory(path.parent)  # a scrub must survive a crash too
    return True


def _fsync_directory(directory: Path) -> None:
    """Make a rename or unlink in ``directory`` durable."""
    if os.name != "posix":  # Windows cannot open a directory to fsync it
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
