"""``FileWatchTrigger``: a run for each file that appears or changes in a directory."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Self

import anyio
import anyio.to_thread

from pirn_like._errors import ClosedResourceError, MissingExtraError
from pirn_like.core._records import RunOutcome, RunRequest

if TYPE_CHECKING:
    from watchfiles import Change

__all__ = ["FileWatchTrigger"]

_FileKey = tuple[str, int, int]  # path, mtime_ns, size


class FileWatchTrigger:
    """Starts a run for each file matching ``pattern`` that appears or changes under
    ``directory`` (in its subdirectories too with ``recursive=True``), passing the
    file's absolute path as the parameter ``parameter_name``.

    A file triggers once it has been left alone for ``debounce`` seconds, so a file
    being written triggers one run, not one per write. ``pattern`` is a glob matched
    against the path relative to ``directory`` from the right (``*.csv``,
    ``incoming/*.csv``); deleted files and directories trigger nothing.

    The run id is derived from the path, modification time and size, so a change
    notified again without new content (a metadata change, a service restarted over
    the same files with a shared history) is settled as a duplicate without running
    again. With ``existing=True`` the files already there when the trigger opens are
    delivered too: a restarted service catches up on files that arrived while it was
    down, and those it had already run dedup. Changes while no trigger watches are
    otherwise not seen. Uses ``watchfiles`` (``pip install 'pirn-like[watch]'``);
    works on asyncio and trio.
    """

    kind = "file_watch"

    def __init__(
        self,
        directory: str | os.PathLike[str],
        pattern: str = "*.csv",
        *,
        debounce: float = 0.5,
        parameter_name: str = "path",
        recursive: bool = True,
        existing: bool = False,
    ) -> None:
        if not debounce >= 0:
            raise ValueError(f"debounce must be a number of seconds >= 0, not {debounce!r}")
        if not pattern:
            raise ValueError("FileWatchTrigger needs a glob pattern such as '*.csv'")
        if not parameter_name:
            raise ValueError("FileWatchTrigger needs the parameter_name paths are passed as")
        self._directory = Path(directory).absolute()
        self._pattern = pattern
        self._debounce = debounce
        self._parameter_name = parameter_name
        self._recursive = recursive
        self._existing = existing
        self._changes: AsyncGenerator[set[tuple[Change, str]]] | None = None
        self._settling: dict[str, float] = {}  # path -> when it will have been quiet long enough
        self._in_flight: set[_FileKey] = set()

    @property
    def directory(self) -> Path:
        """The watched directory."""
        return self._directory

    def __repr__(self) -> str:
        return f"FileWatchTrigger({str(self._directory)!r}, {self._pattern!r})"

    async def __aenter__(self) -> Self:
        try:
            from watchfiles import Change, awatch
        except ImportError as exc:
            raise MissingExtraError("FileWatchTrigger", "watch", "watchfiles") from exc
        if not await anyio.Path(self._directory).is_dir():
            raise NotADirectoryError(f"{self!r}: {str(self._directory)!r} is not a directory")

        def wanted(change: Change, path: str) -> bool:
            if change is Change.deleted:
                return False
            # A new directory's files may be written before its watch is set up, and
            # then send no event of their own: the directory is scanned instead.
            return self._matches(path) or (self._recursive and change is Change.added)

        # Ticks (an empty set each ``tick`` ms without changes) time the debounce and
        # show the watcher is up: the first one means changes from now on are seen.
        tick = max(50, min(200, round(self._debounce * 250)))
        changes = awatch(
            self._directory,
            watch_filter=wanted,
            debounce=tick,
            step=min(50, tick),
            rust_timeout=tick,
            yield_on_timeout=True,
            recursive=self._recursive,
        )
        try:
            first = await anext(changes)
            self._settling.clear()
            await self._note([self._directory] if self._existing else [], first)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await changes.aclose()
            raise
        self._changes = changes
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        changes, self._changes = self._changes, None
        if changes is not None:
            await changes.aclose()

    def _matches(self, path: str) -> bool:
        try:
            relative = PurePath(path).relative_to(self._directory)
        except ValueError:
            return False
        return relative.match(self._pattern)

    async def _note(self, roots: list[Path], changes: Iterable[tuple[object, str]]) -> None:
        """Changed files, and the files under ``roots`` and new directories, run once
        they have been left alone for ``debounce`` seconds."""
        paths = [path for _, path in changes]
        if not paths and not roots:
            return
        found = await anyio.to_thread.run_sync(self._expand, roots, paths)
        due = anyio.current_time() + self._debounce
        for path in found:
            self._settling[path] = due

    def _expand(self, roots: list[Path], paths: list[str]) -> list[str]:
        found = [p for p in paths if self._matches(p)]
        for directory in [*roots, *(Path(p) for p in paths if os.path.isdir(p))]:
            files = directory.rglob("*") if self._recursive else directory.glob("*")
            found += sorted(str(f) for f in files if f.is_file() and self._matches(str(f)))
        return found

    async def deliveries(self) -> AsyncIterator[_FileDelivery]:
        """One delivery per settled change of a matching file, oldest change first."""
        changes = self._changes
        if changes is None:
            raise ClosedResourceError(f"{self!r} is not open: run_forever opens it")
        while True:
            now = anyio.current_time()
            ready = sorted((due, path) for path, due in self._settling.items() if due <= now)
            for _, path in ready:
                del self._settling[path]
                delivery = await self._delivery(path)
                if delivery is not None:
                    yield delivery
            try:
                batch = await anext(changes)
            except StopAsyncIteration:
                return
            await self._note([], batch)

    async def _delivery(self, path: str) -> _FileDelivery | None:
        try:
            status = await anyio.Path(path).stat()
        except FileNotFoundError:
            return None  # gone before it settled
        if not stat.S_ISREG(status.st_mode):
            return None
        key: _FileKey = (path, status.st_mtime_ns, status.st_size)
        if key in self._in_flight:  # notified again while its run is going
            return None
        digest = hashlib.sha256(f"{path}\0{key[1]}\0{key[2]}".encode()).hexdigest()
        request = RunRequest(
            parameters={self._parameter_name: path},
            run_id=f"file-{digest[:32]}",
            trigger={
                "kind": self.kind,
                "source": str(self._directory),
                "path": path,
                "mtime_ns": key[1],
                "size": key[2],
            },
        )
        self._in_flight.add(key)
        return _FileDelivery(request, key, self._in_flight)


class _FileDelivery:
    __slots__ = ("_in_flight", "_key", "_request")

    def __init__(self, request: RunRequest, key: _FileKey, in_flight: set[_FileKey]) -> None:
        self._request = request
        self._key = key
        self._in_flight = in_flight

    @property
    def request(self) -> RunRequest:
        return self._request

    async def settle(self, outcome: RunOutcome) -> None:
        # Nothing to acknowledge: the file stays where it is, and its run id dedups it.
        self._in_flight.discard(self._key)

    async def release(self) -> None:
        self._in_flight.discard(self._key)
