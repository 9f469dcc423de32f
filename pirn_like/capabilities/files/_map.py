"""``MapFiles``: run a function once per collected file, skipping files already processed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pirn_like._errors import WiringError
from pirn_like._ids import ContentHash
from pirn_like.capabilities.files._models import FileRef, FileSet, MapFilesResult
from pirn_like.capabilities.files._protocol import Ledger
from pirn_like.core._config import KnotConfig
from pirn_like.core._hashing import content_hash
from pirn_like.core._knot import Registrar
from pirn_like.core._records import execution_hash
from pirn_like.core._results import Outcome
from pirn_like.core._runtime import KnotRuntime
from pirn_like.nodes._checks import require_knot
from pirn_like.nodes._map import _FanOut, _shared_hashes

__all__ = ["MapFiles", "file_set_of"]


def file_set_of(owner: str, value: object) -> FileSet:
    """``value`` if it is a FileSet, else a TypeError saying where one comes from."""
    if not isinstance(value, FileSet):
        raise TypeError(
            f"{owner}: files must be a FileSet (the output of Collect), got {type(value).__name__}"
        )
    return value


class MapFiles(_FanOut):
    """Run ``each`` once per file of a ``FileSet``, skipping the files it already
    processed; outputs a ``MapFilesResult``.

    Each file is its own execution, with its own lineage record (knot id
    ``<id>[<relative path>]``, input: the file's ``FileRef``). The ``ledger`` (pass
    ``tapestry.history``) is the run ledger: a file is skipped when an earlier run
    has a succeeded record of this item with the same execution hash, that is the
    same file content, the same code and settings and the same shared inputs. So an
    unchanged tree processes nothing, a changed file is processed again, and a file
    that failed is retried by the next run (a failure fails the map, naming the
    files). ``bind`` names the input of ``each`` that takes the ``FileRef`` (default:
    its only input not given as a keyword); other keywords are passed to every item.
    """

    def __init__(
        self,
        *,
        files: Any,
        each: Callable[..., Any],
        ledger: Ledger,
        bind: str | None = None,
        max_concurrency: int | None = None,
        _config: KnotConfig | None = None,
        tapestry: Registrar | None = None,
        **inputs: Any,
    ) -> None:
        node = f"MapFiles {getattr(_config, 'id', '?')!r}"
        if not callable(getattr(ledger, "query_lineage_by_input_hash", None)):
            raise WiringError(f"{node}: ledger must be a RunHistory (tapestry.history)")
        self._setup(node, each, max_concurrency)
        self.bind = bind or self._infer_bind(node, taken=set(inputs))
        self._check_binding(node, {self.bind}, set(inputs))
        self.ledger = ledger
        super().__init__(
            _config=_config, tapestry=tapestry, files=require_knot(node, "files", files), **inputs
        )

    def identity_settings(self) -> dict[str, object]:
        return {**super().identity_settings(), "bind": self.bind}

    async def _execute(self, kwargs: dict[str, Any], runtime: KnotRuntime) -> MapFilesResult:
        files = file_set_of(f"map_files {self.id!r}", kwargs.pop("files"))
        shared = _shared_hashes(kwargs)
        item_config = self.each.config_hash_under(self)
        todo: list[FileRef] = []
        skipped: list[str] = []
        for ref in files.files:
            if await self._processed(ref, item_config, shared):
                skipped.append(ref.path)
            else:
                todo.append(ref)
        values = await self._run(runtime, [(ref.path, {self.bind: ref}) for ref in todo], kwargs)
        results = {ref.path: value for ref, value in zip(todo, values, strict=True)}
        return MapFilesResult(results=results, skipped=tuple(skipped))

    async def _processed(
        self, ref: FileRef, item_config: ContentHash, shared: dict[str, ContentHash]
    ) -> bool:
        file_hash = content_hash(ref)
        wanted = execution_hash(item_config, {**shared, self.bind: file_hash})
        records = await self.ledger.query_lineage_by_input_hash(file_hash)
        return any(r.outcome is Outcome.OK and r.execution_hash == wanted for r in records)
