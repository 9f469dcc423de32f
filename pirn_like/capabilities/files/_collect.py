"""``Collect``: the files under a directory that match glob patterns, with content hashes."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from pirn_like._errors import WiringError
from pirn_like.capabilities.files._glob import PathFilter, patterns_of
from pirn_like.capabilities.files._models import FileRef, FileSet
from pirn_like.core._config import KnotConfig
from pirn_like.core._knot import Knot, Registrar

__all__ = ["Collect"]

_ATTEMPTS = 3  # a file still changing after this many reads fails the knot


class Collect(Knot):
    """The files under the directory ``root`` that match ``include`` and none of
    ``exclude``, as a ``FileSet`` sorted by relative path.

    ``root`` is an input (a constant, a ``Parameter`` or a parent knot). Each file is
    hashed (sha256, streamed) in a worker thread, ``max_concurrency`` at a time, so
    an unchanged tree gives an equal ``FileSet`` and an equal content hash. Patterns
    are globs over ``/``-separated relative paths: without ``/`` they match a file
    name in any directory (``*.csv``), with ``/`` the whole path (``raw/**/*.json``).
    Symbolic links to directories are not followed.
    """

    def __init__(
        self,
        *,
        root: object,
        include: str | Sequence[str] = "*",
        exclude: str | Sequence[str] = (),
        max_concurrency: int = 4,
        _config: KnotConfig | None = None,
        tapestry: Registrar | None = None,
    ) -> None:
        node = f"Collect {getattr(_config, 'id', '?')!r}"
        try:
            self.include = patterns_of(f"{node} include", include)
            self.exclude = patterns_of(f"{node} exclude", exclude)
        except ValueError as exc:
            raise WiringError(str(exc)) from None
        if not self.include:
            raise WiringError(f"{node}: include needs at least one pattern (e.g. '*')")
        if max_concurrency < 1:
            raise WiringError(f"{node}: max_concurrency must be at least 1")
        self.max_concurrency = max_concurrency
        self._filter = PathFilter.of(self.include, self.exclude)
        super().__init__(_config=_config, tapestry=tapestry, root=root)

    def identity_settings(self) -> dict[str, object]:
        return {
            **super().identity_settings(),
            "include": list(self.include),
            "exclude": list(self.exclude),
        }

    async def process(self, root: str | os.PathLike[str], **_: Any) -> FileSet:
        base, found = await anyio.to_thread.run_sync(self._listing, root)
        refs: list[FileRef | None] = [None] * len(found)
        work = iter(enumerate(found))

        async def worker() -> None:
            for index, relative in work:
                refs[index] = await anyio.to_thread.run_sync(_file_ref, base, relative)

        async with anyio.create_task_group() as tg:
            for _worker in range(min(self.max_concurrency, len(found))):
                tg.start_soon(worker)
        return FileSet(
            root=base.as_posix(),
            include=self.include,
            exclude=self.exclude,
            # A file deleted between listing and hashing is simply not there.
            files=tuple(r for r in refs if r is not None),
        )

    def _listing(self, root: str | os.PathLike[str]) -> tuple[Path, list[str]]:
        """The absolute root and the matching relative paths, sorted (in a thread)."""
        base = Path(root).absolute()
        if not base.is_dir():
            raise NotADirectoryError(f"collect {self.id!r}: {str(base)!r} is not a directory")
        return base, sorted(p for p in _walk(base) if self._filter(p))


def _walk(base: Path) -> Iterator[str]:
    for directory, dirs, files in os.walk(base):
        dirs.sort()
        prefix = Path(directory).relative_to(base).as_posix()
        for name in files:
            yield name if prefix == "." else f"{prefix}/{name}"


def _file_ref(base: Path, relative: str) -> FileRef | None:
    path = base / relative
    if not path.is_file():  # a FIFO or socket would block the read; a gone file is gone
        return None
    for _ in range(_ATTEMPTS):
        try:
            with path.open("rb") as file:
                before = os.fstat(file.fileno())
                digest = hashlib.file_digest(file, "sha256").hexdigest()
                after = os.fstat(file.fileno())
        except FileNotFoundError:
            return None
        # Compared so the size and mtime stored are those of the bytes hashed.
        if (before.st_size, before.st_mtime_ns) == (after.st_size, after.st_mtime_ns):
            return FileRef(
                root=base.as_posix(),
                path=relative,
                size=after.st_size,
                mtime_ns=after.st_mtime_ns,
                sha256=digest,
            )
    raise RuntimeError(f"{str(path)!r} kept changing while it was hashed ({_ATTEMPTS} reads)")
