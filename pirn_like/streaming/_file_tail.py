"""``FileTailSource``: the lines appended to a file, like ``tail -F``."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO, Self

import anyio
import anyio.to_thread

from pirn_like._errors import ClosedResourceError
from pirn_like.streaming._iterable import PlainItem

__all__ = ["FileTailSource"]

_CHUNK = 64 * 1024


class FileTailSource:
    """A ``StreamSource`` of the lines appended to a text file; each line is an item.

    Lines are followed from the end of the file as it is when the source opens (from
    its start with ``from_start=True``; a file that does not exist yet is read from its
    start once it appears). A line is delivered once its newline is written, without
    the newline. The file is polled every ``poll_interval`` seconds while nothing new
    is written.

    Rotation is followed: when the path names a new file (the old one renamed or
    deleted, a new one created), the rest of the old file is read, including a last
    line without newline, and the new file is followed from its start. When the file
    shrinks (truncated in place, ``copytruncate``), it is read again from its start.
    A truncation followed, within one poll, by more writes than were there before is
    not noticed; neither are lines written to a rotated file after the new one was
    seen. Each item's position is ``path:inode:offset`` (the line's first byte). The
    source keeps no position across restarts, so it never delivers a line again and
    its runs get fresh run ids.
    """

    kind = "file_tail"
    redelivers = False

    def __init__(
        self,
        path: str | os.PathLike[str],
        parameter_name: str = "line",
        *,
        from_start: bool = False,
        poll_interval: float = 0.1,
        encoding: str = "utf-8",
    ) -> None:
        if not poll_interval > 0:
            raise ValueError(
                f"poll_interval must be a positive number of seconds, not {poll_interval!r}"
            )
        if not parameter_name:
            raise ValueError("FileTailSource needs the parameter_name its lines are passed as")
        "".encode(encoding)  # an unknown encoding fails here, naming itself
        self._path = Path(path).absolute()
        self._parameter_name = parameter_name
        self._from_start = from_start
        self._poll_interval = poll_interval
        self._encoding = encoding
        self._tail: _Tail | None = None

    @property
    def parameter_name(self) -> str:
        """The tapestry parameter each line is passed as."""
        return self._parameter_name

    @property
    def origin(self) -> str:
        """The followed path, as recorded in each run's trigger."""
        return str(self._path)

    async def __aenter__(self) -> Self:
        if self._tail is not None:
            raise RuntimeError(f"FileTailSource({str(self._path)!r}) is already open")
        self._tail = await anyio.to_thread.run_sync(_Tail.start, self._path, self._from_start)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        tail, self._tail = self._tail, None
        if tail is not None:
            tail.close()

    async def items(self) -> AsyncIterator[PlainItem]:
        """Each complete line, as it is written; never ends on its own."""
        tail = self._tail
        if tail is None:
            raise ClosedResourceError(
                f"FileTailSource({str(self._path)!r}) is not open: use `async with source:` "
                "(run_stream and StreamingSourceTrigger open it)"
            )
        prefix = str(self._path)
        while True:
            lines = await anyio.to_thread.run_sync(tail.step)
            if not lines:
                await anyio.sleep(self._poll_interval)
                continue
            for inode, offset, raw in lines:
                value = raw.decode(self._encoding, errors="replace").removesuffix("\r")
                yield PlainItem(value, f"{prefix}:{inode}:{offset}")


class _Tail:
    """The blocking part: one open file, how far it was read, a partial last line.

    Only ever used from one thread at a time (each ``step`` is one thread call).
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._file: BinaryIO | None = None
        self._inode = 0
        self._read_to = 0  # bytes of the file read so far
        self._partial = b""  # read, but its newline is not written yet

    @classmethod
    def start(cls, path: Path, from_start: bool) -> _Tail:
        tail = cls(path)
        if tail._open() and not from_start:
            assert tail._file is not None
            tail._read_to = tail._file.seek(0, os.SEEK_END)
        return tail

    def step(self) -> list[tuple[int, int, bytes]]:
        """The lines completed since the last step as ``(inode, offset, line)``."""
        if self._file is None and not self._open():
            return []
        assert self._file is not None
        data = self._file.read(_CHUNK)
        if data:
            return self._lines(data)
        # Nothing new: has the path been given to another file, or was this one cut?
        try:
            status = os.stat(self._path)
        except FileNotFoundError:
            return []  # rotated away; the new file is not there yet
        if status.st_ino != self._inode:
            lines = self._lines(self._file.read())  # what was written before the switch
            if self._partial:
                lines.append((self._inode, self._read_to - len(self._partial), self._partial))
            self._file.close()
            self._file = None
            self._open()
            return lines
        if status.st_size < self._read_to:
            self._file.seek(0)
            self._read_to = 0
            self._partial = b""
        return []

    def _open(self) -> bool:
        """Open the file the path names now, at its start; False if there is none."""
        try:
            file = open(self._path, "rb")  # noqa: SIM115 - closed by close() or on rotation
        except FileNotFoundError:
            return False
        self._file = file
        self._inode = os.fstat(file.fileno()).st_ino
        self._read_to = 0
        self._partial = b""
        return True

    def _lines(self, data: bytes) -> list[tuple[int, int, bytes]]:
        start = self._read_to - len(self._partial)
        self._read_to += len(data)
        pieces = (self._partial + data).split(b"\n")
        self._partial = pieces.pop()
        lines: list[tuple[int, int, bytes]] = []
        for piece in pieces:
            lines.append((self._inode, start, piece))
            start += len(piece) + 1
        return lines

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
