"""The manifest a ``Mirror`` keeps in its output directory: which files it wrote, from what.

It is how a mirror knows what it owns: only files named here are ever overwritten
or deleted. An output is claimed (entry without ``sha256``) before it is written,
so a crash mid-write still leaves it owned, and the next run writes it again.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from pirn_like.backends._disk_data import _write_file
from pirn_like.capabilities.files._errors import MirrorConflictError

__all__ = ["MANIFEST_NAME", "Entry", "read_manifest", "write_manifest"]

MANIFEST_NAME = ".pirn-mirror.json"
_VERSION = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """One output the mirror owns (keyed by its relative path in the manifest)."""

    source: str
    source_sha256: str
    fingerprint: str
    """The mirror's settings and transform code when it was written: a change rewrites it."""
    sha256: str | None = None
    """``None`` while claimed but not (yet) written."""
    size: int | None = None
    mtime_ns: int | None = None

    def is_current(self, source: str, source_sha256: str, fingerprint: str, path: Path) -> bool:
        """Written from this source content with these settings, and untouched since."""
        if self.sha256 is None or (self.source, self.source_sha256, self.fingerprint) != (
            source,
            source_sha256,
            fingerprint,
        ):
            return False
        try:
            status = path.stat()
        except FileNotFoundError:
            return False
        return (status.st_size, status.st_mtime_ns) == (self.size, self.mtime_ns)


def read_manifest(root: Path) -> dict[str, Entry]:
    """The entries kept under ``root`` (none if the mirror has written nothing yet)."""
    path = root / MANIFEST_NAME
    try:
        raw = json.loads(path.read_bytes())
        if raw["version"] != _VERSION:
            raise ValueError(f"version {raw['version']!r} is not {_VERSION}")
        return {str(out): Entry(**fields) for out, fields in raw["outputs"].items()}
    except FileNotFoundError:
        return {}
    except (ValueError, KeyError, TypeError) as exc:
        raise MirrorConflictError(
            f"mirror manifest {str(path)!r} is unreadable ({exc}); without it the mirror "
            "cannot tell its files from others: restore it, or empty the directory"
        ) from exc


def write_manifest(root: Path, entries: dict[str, Entry]) -> None:
    """Replace the manifest atomically (temporary file, then rename)."""
    outputs = {out: asdict(entries[out]) for out in sorted(entries)}
    data = json.dumps({"version": _VERSION, "outputs": outputs}, indent=1).encode()
    _write_file(root / MANIFEST_NAME, data)
