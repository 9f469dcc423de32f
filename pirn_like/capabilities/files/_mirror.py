"""``Mirror``: an output tree that follows an input tree, one transformed file per input."""

from __future__ import annotations

import hashlib
import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import anyio
import anyio.to_thread

from pirn_like._errors import WiringError
from pirn_like.backends._disk_data import _remove_file, _write_file
from pirn_like.capabilities.files._errors import MirrorConflictError
from pirn_like.capabilities.files._manifest import (
    MANIFEST_NAME,
    Entry,
    read_manifest,
    write_manifest,
)
from pirn_like.capabilities.files._map import file_set_of
from pirn_like.capabilities.files._models import FileRef, FileSet, MirroredFile, MirrorResult
from pirn_like.capabilities.files._protocol import Transform
from pirn_like.core._config import KnotConfig
from pirn_like.core._identity import callable_identity
from pirn_like.core._knot import ProcessSpec, Registrar
from pirn_like.core._results import Ok
from pirn_like.core._runtime import ItemTarget, KnotRuntime
from pirn_like.nodes._checks import require_knot
from pirn_like.nodes._map import _FanOut, _values

__all__ = ["Mirror"]


class Mirror(_FanOut):
    """Keep the directory ``to`` a transformed copy of a ``FileSet``; outputs a
    ``MirrorResult``.

    Each input file becomes one output, written by ``transform(file_ref)`` (sync or
    async; it returns ``bytes`` or ``str``) at the input's relative path, renamed by
    ``rename(path)`` or given a new ``suffix``. Outputs are written atomically
    (temporary file, then rename). Only files whose input content, transform code or
    settings changed since the last run, or whose output was touched, are written
    again; outputs whose input is gone are deleted. The mirror records what it
    wrote in ``to/.pirn-mirror.json`` and never overwrites or deletes a file not
    listed there (``MirrorConflictError``). Each file written is its own execution
    with its own lineage record (knot id ``<id>[<input path>]``, input: the
    ``FileRef``, output: the ``MirroredFile``).
    """

    def __init__(
        self,
        *,
        files: Any,
        to: str | os.PathLike[str],
        transform: Transform,
        rename: Callable[[str], str] | None = None,
        suffix: str | None = None,
        max_concurrency: int | None = None,
        _config: KnotConfig | None = None,
        tapestry: Registrar | None = None,
    ) -> None:
        node = f"Mirror {getattr(_config, 'id', '?')!r}"
        if rename is not None and suffix is not None:
            raise WiringError(f"{node}: pass rename= or suffix=, not both")
        if suffix is not None and not (suffix == "" or suffix.startswith(".")):
            raise WiringError(f"{node}: suffix must start with '.' (e.g. '.json'), got {suffix!r}")
        self._setup(node, transform, max_concurrency)
        self._transform = self.each.target
        self.destination = Path(to).absolute()
        self.rename = rename
        self.suffix = suffix
        # Runs of one mirror (run_forever runs several at once) take turns: each
        # plans from the manifest the previous one left.
        self._turn = anyio.Lock()
        # Items run the transform and write its result; they are identified by the
        # transform's code, as a Map's items are by their function.
        write = self._write_one
        self.each = ItemTarget(
            target=write,
            spec=ProcessSpec.of(write, owner=f"{node} write", skip_self=False),
            knot_class=self.each.knot_class,
            identity=self.each.identity,
        )
        super().__init__(
            _config=_config, tapestry=tapestry, files=require_knot(node, "files", files)
        )

    def identity_settings(self) -> dict[str, object]:
        renamer = None if self.rename is None else callable_identity(self.rename)
        return {
            **super().identity_settings(),
            "to": self.destination.as_posix(),
            "rename": renamer,
            "suffix": self.suffix,
        }

    def output_path(self, source: str) -> str:
        """Where the input at relative path ``source`` is mirrored to (relative to ``to``)."""
        if self.rename is not None:
            out = self.rename(source)
        elif self.suffix is not None:
            out = PurePosixPath(source).with_suffix(self.suffix).as_posix()
        else:
            out = source
        parts = PurePosixPath(out).parts if isinstance(out, str) else ()  # pyright: ignore[reportUnnecessaryIsInstance]
        if not parts or out.startswith("/") or ".." in parts or out == MANIFEST_NAME:
            raise ValueError(
                f"mirror {self.id!r}: output path {out!r} for {source!r} must be a relative "
                f"path inside the mirror (no '..', not {MANIFEST_NAME!r})"
            )
        return PurePosixPath(out).as_posix()

    async def _execute(self, kwargs: dict[str, Any], runtime: KnotRuntime) -> MirrorResult:
        files = file_set_of(f"mirror {self.id!r}", kwargs.pop("files"))
        async with self._turn:
            return await self._sync(files, runtime)

    async def _sync(self, files: FileSet, runtime: KnotRuntime) -> MirrorResult:
        # Settings and transform code: an output made under others is made again.
        fingerprint = self.each.config_hash_under(self)
        plan = await anyio.to_thread.run_sync(self._plan, files, fingerprint)
        root = self.destination
        if plan.doomed or plan.todo:
            # Deleted first, claimed before written: the manifest always lists every
            # file of ours that may be on disk.
            await anyio.to_thread.run_sync(_remove_all, root, plan.doomed)
            await anyio.to_thread.run_sync(write_manifest, root, plan.entries)
        labels = [ref.path for ref in plan.todo]
        results = await runtime.run_items(
            self,
            self.each,
            [(ref.path, {"file": ref}) for ref in plan.todo],
            shared={},
            shared_hashes={},
            limit=self.item_concurrency,
        )
        written = [r.value for r in results if type(r) is Ok]
        if plan.todo:
            await anyio.to_thread.run_sync(
                _record_written, root, plan.entries, written, fingerprint
            )
        _values(self.id, labels, results)  # raises, naming the files that failed
        made = {m.source: m for m in written}
        return MirrorResult(
            root=root.as_posix(),
            files=tuple(made[r.path] if r.path in made else plan.kept[r.path] for r in files.files),
            written=tuple(m.path for m in written),
            removed=tuple(plan.doomed),
        )

    def _plan(self, files: FileSet, fingerprint: str) -> _Plan:
        """What to write, keep and delete; refuses anything that would touch a file
        the mirror does not own. Runs in a worker thread."""
        root = self.destination
        _check_apart(self.id, Path(files.root), root)
        owned = read_manifest(root)
        plan = _Plan()
        sources: dict[str, str] = {}
        for ref in files.files:
            out = self.output_path(ref.path)
            if out in sources:
                raise MirrorConflictError(
                    f"mirror {self.id!r}: {sources[out]!r} and {ref.path!r} both map to {out!r}"
                )
            sources[out] = ref.path
            entry = owned.get(out)
            if entry is not None and entry.is_current(
                ref.path, ref.sha256, fingerprint, root / out
            ):
                plan.kept[ref.path] = _mirrored(root, out, entry)
                plan.entries[out] = entry
                continue
            if entry is None and (root / out).exists():
                raise MirrorConflictError(
                    f"mirror {self.id!r}: {str(root / out)!r} exists and was not written by "
                    f"this mirror; move it away or mirror into another directory"
                )
            plan.todo.append(ref)
            plan.entries[out] = Entry(
                source=ref.path, source_sha256=ref.sha256, fingerprint=fingerprint
            )
        plan.doomed = sorted(set(owned) - set(sources))
        return plan

    async def _write_one(self, file: FileRef) -> MirroredFile:
        """One item: transform ``file``, write the result atomically."""
        transform = self._transform
        if inspect.iscoroutinefunction(transform):
            data: object = await transform(file)
        else:
            data = await anyio.to_thread.run_sync(transform, file)
            if inspect.isawaitable(data):
                data = await data
        if isinstance(data, str):
            data = data.encode()
        if not isinstance(data, bytes | bytearray):
            raise TypeError(
                f"mirror {self.id!r}: the transform returned {type(data).__name__} for "
                f"{file.path!r}; return bytes or str"
            )
        out = self.output_path(file.path)
        target = self.destination / out
        await anyio.to_thread.run_sync(_write_file, target, bytes(data))
        return MirroredFile(
            root=self.destination.as_posix(),
            path=out,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            source=file.path,
            source_sha256=file.sha256,
        )


@dataclass(slots=True)
class _Plan:
    todo: list[FileRef] = field(default_factory=list[FileRef])
    kept: dict[str, MirroredFile] = field(default_factory=dict[str, MirroredFile])
    """Input path -> its output, already current."""
    entries: dict[str, Entry] = field(default_factory=dict[str, Entry])
    """Output path -> entry: the manifest once the doomed are deleted."""
    doomed: list[str] = field(default_factory=list[str])
    """Outputs whose input is gone (or now maps elsewhere)."""


def _mirrored(root: Path, out: str, entry: Entry) -> MirroredFile:
    assert entry.sha256 is not None
    assert entry.size is not None
    return MirroredFile(
        root=root.as_posix(),
        path=out,
        size=entry.size,
        sha256=entry.sha256,
        source=entry.source,
        source_sha256=entry.source_sha256,
    )


def _check_apart(owner: str, source: Path, root: Path) -> None:
    if source == root or source.is_relative_to(root) or root.is_relative_to(source):
        raise MirrorConflictError(
            f"mirror {owner!r}: the input tree {source.as_posix()!r} and the output tree "
            f"{root.as_posix()!r} overlap; mirror into a directory outside the input"
        )


def _remove_all(root: Path, outputs: list[str]) -> None:
    for out in outputs:
        path = root / out
        _remove_file(path)
        # Directories left empty by the deletion go too, up to the mirror's root.
        parent = path.parent
        while parent != root and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent


def _record_written(
    root: Path, entries: dict[str, Entry], written: list[MirroredFile], fingerprint: str
) -> None:
    for made in written:
        status = (root / made.path).stat()
        entries[made.path] = Entry(
            source=made.source,
            source_sha256=made.source_sha256,
            fingerprint=fingerprint,
            sha256=made.sha256,
            size=status.st_size,
            mtime_ns=status.st_mtime_ns,
        )
    write_manifest(root, entries)
