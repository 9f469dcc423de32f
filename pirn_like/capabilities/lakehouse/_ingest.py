"""``LakehouseIngest``: an Arrow batch into a lakehouse table, as a knot."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pirn_like._errors import WiringError
from pirn_like.capabilities.lakehouse._models import IngestMode, IngestResult, IngestSpec
from pirn_like.capabilities.lakehouse._protocol import Lakehouse
from pirn_like.core._config import KnotConfig
from pirn_like.core._knot import Knot, Registrar

__all__ = ["LakehouseIngest"]


class LakehouseIngest(Knot):
    """Write the input ``data`` (a pyarrow Table, RecordBatch or list of row dicts)
    into ``table`` of ``lakehouse``; outputs an ``IngestResult`` naming the snapshot.

    ``mode``: ``append``; ``snapshot`` (replace the contents); ``incremental`` with
    ``watermark=`` (only rows above the table's maximum; re-ingesting a batch adds
    nothing); ``bitemporal`` with ``key=`` (changed rows close their current version
    and open a new one; ``delete_missing=True`` also closes keys absent from the
    batch). The optional input ``valid_at`` sets a bitemporal batch's valid time.
    The lakehouse, table and mode enter the knot's config hash.
    """

    def __init__(
        self,
        *,
        lakehouse: Lakehouse,
        table: str,
        mode: IngestMode | str = IngestMode.APPEND,
        watermark: str | None = None,
        key: str | Sequence[str] = (),
        delete_missing: bool = False,
        _config: KnotConfig | None = None,
        tapestry: Registrar | None = None,
        **inputs: Any,
    ) -> None:
        node = f"LakehouseIngest {getattr(_config, 'id', '?')!r}"
        if not isinstance(lakehouse, Lakehouse):
            raise WiringError(f"{node}: lakehouse= must be a Lakehouse, got {lakehouse!r}")
        try:
            chosen = IngestMode(mode)
        except ValueError:
            modes = [m.value for m in IngestMode]
            raise WiringError(f"{node}: unknown mode {mode!r}; modes: {modes}") from None
        keys = (key,) if isinstance(key, str) else tuple(key)
        if chosen is IngestMode.INCREMENTAL and not watermark:
            raise WiringError(f"{node}: mode 'incremental' needs watermark='<column>'")
        if chosen is IngestMode.BITEMPORAL and not keys:
            raise WiringError(f"{node}: mode 'bitemporal' needs key='<column>' (or a list)")
        self.lakehouse = lakehouse
        try:
            self.table = lakehouse.qualified(table)
        except ValueError as error:
            raise WiringError(f"{node}: {error}") from None
        self.spec = IngestSpec(
            mode=chosen, watermark=watermark, key=keys, delete_missing=delete_missing
        )
        super().__init__(_config=_config, tapestry=tapestry, **inputs)

    def identity_settings(self) -> dict[str, object]:
        return {
            **super().identity_settings(),
            "lakehouse": self.lakehouse.identity,
            "table": self.table,
            "spec": self.spec.model_dump(mode="json", exclude={"valid_at"}),
        }

    async def process(self, data: Any, valid_at: datetime | None = None, **_: Any) -> IngestResult:
        spec = (
            self.spec if valid_at is None else self.spec.model_copy(update={"valid_at": valid_at})
        )
        return await self.lakehouse.ingest(self.table, data, spec)
