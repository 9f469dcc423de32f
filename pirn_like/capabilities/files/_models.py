"""The values file knots pass along: files found, files mirrored, what a fan-out did."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from pirn_like.core._codecs import register_codec

__all__ = ["FileRef", "FileSet", "MapFilesResult", "MirrorResult", "MirroredFile"]


class FileRef(BaseModel):
    """One file found by ``Collect``: where it is, how big, when changed, what it holds.

    Its content hash (what lineage records) covers ``root``, ``path``, ``size`` and
    ``sha256`` but not ``mtime_ns``: touching a file without changing its bytes
    leaves it the same value, so it is not processed again.
    """

    model_config = ConfigDict(frozen=True)

    root: str
    """The collected directory, absolute, with ``/`` separators."""
    path: str
    """The file's path relative to ``root``, with ``/`` separators."""
    size: int
    mtime_ns: int
    sha256: str
    """Hex sha256 of the file's bytes."""

    @property
    def absolute(self) -> Path:
        """The file's absolute path."""
        return Path(self.root, self.path)

    def read_bytes(self) -> bytes:
        """The file's current bytes (blocking; sync transforms run in a thread)."""
        return self.absolute.read_bytes()

    def read_text(self, encoding: str = "utf-8") -> str:
        """The file's current text (blocking; sync transforms run in a thread)."""
        return self.absolute.read_text(encoding)


def _file_identity(ref: FileRef) -> tuple[str, str, int, str]:
    return (ref.root, ref.path, ref.size, ref.sha256)


# The modification time is noise for lineage (a copy or a touch changes it, the
# content does not), so FileRef hashes by location and content alone.
register_codec(FileRef, _file_identity, name="pirn_like.capabilities.files.FileRef")


class FileSet(BaseModel):
    """What ``Collect`` found: the matching files under ``root``, sorted by path.

    Equal trees give equal hashes: the hash covers the patterns and every file's
    path, size and content hash.
    """

    model_config = ConfigDict(frozen=True)

    root: str
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    files: tuple[FileRef, ...]

    @property
    def paths(self) -> list[str]:
        """The relative paths, in order."""
        return [f.path for f in self.files]


class MapFilesResult(BaseModel):
    """What ``MapFiles`` did in one run.

    ``results`` maps the relative path of each file processed in this run to what
    the per-file function returned; ``skipped`` lists the files an earlier run had
    already processed successfully with the same content, code and inputs.
    """

    model_config = ConfigDict(frozen=True)

    results: dict[str, Any]
    skipped: tuple[str, ...]


class MirroredFile(BaseModel):
    """One output file of a ``Mirror``, and the input file it was made from."""

    model_config = ConfigDict(frozen=True)

    root: str
    """The mirror's output directory, absolute, with ``/`` separators."""
    path: str
    """The output's path relative to ``root``."""
    size: int
    sha256: str
    """Hex sha256 of the output's bytes."""
    source: str
    """The input file's path relative to the input root."""
    source_sha256: str

    @property
    def absolute(self) -> Path:
        """The output's absolute path."""
        return Path(self.root, self.path)


class MirrorResult(BaseModel):
    """The state of a mirror after one run, and what the run changed.

    ``files`` is every output the mirror holds (one per input file, sorted by input
    path); ``written`` and ``removed`` are the output paths this run wrote and
    deleted.
    """

    model_config = ConfigDict(frozen=True)

    root: str
    files: tuple[MirroredFile, ...]
    written: tuple[str, ...]
    removed: tuple[str, ...]
