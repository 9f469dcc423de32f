"""File flows: collect files with content hashes, process each once, mirror a tree.

- ``Collect``: the files under a directory matching glob patterns, as a ``FileSet``
  of ``FileRef`` (path, size, mtime, sha256), hashed in worker threads.
- ``MapFiles``: a function once per file, skipping files an earlier run already
  processed with the same content (the run history is the ledger).
- ``Mirror``: an output tree that follows the input tree through a transform;
  deleted inputs remove their outputs, and only files the mirror wrote are touched.

Everything here uses the standard library only; pair it with ``FileWatchTrigger``
(``pirn_like.triggers``) to run a flow when files change.
"""

from pirn_like._exports import publish
from pirn_like.capabilities.files._collect import Collect
from pirn_like.capabilities.files._errors import MirrorConflictError
from pirn_like.capabilities.files._map import MapFiles
from pirn_like.capabilities.files._mirror import Mirror
from pirn_like.capabilities.files._models import (
    FileRef,
    FileSet,
    MapFilesResult,
    MirroredFile,
    MirrorResult,
)
from pirn_like.capabilities.files._protocol import Ledger, Transform

__all__ = [
    "Collect",
    "FileRef",
    "FileSet",
    "Ledger",
    "MapFiles",
    "MapFilesResult",
    "Mirror",
    "MirrorConflictError",
    "MirrorResult",
    "MirroredFile",
    "Transform",
]

publish(__name__, globals(), [n for n in __all__ if n != "Transform"])
