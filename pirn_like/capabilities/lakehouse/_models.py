"""The records the lakehouse knots take and give: frozen pydantic models."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

__all__ = ["BITEMPORAL_COLUMNS", "IngestMode", "IngestResult", "IngestSpec"]

BITEMPORAL_COLUMNS = ("valid_from", "valid_to", "is_current")
"""Columns a ``bitemporal`` ingest adds to the table; the data may not carry them."""


class IngestMode(StrEnum):
    """How ``LakehouseIngest`` writes a batch into its table."""

    APPEND = "append"
    """Add every row."""
    SNAPSHOT = "snapshot"
    """Replace the table's contents with the batch."""
    INCREMENTAL = "incremental"
    """Add only rows whose watermark column is above the table's current maximum."""
    BITEMPORAL = "bitemporal"
    """Keep history per primary key: a changed row closes its current version
    (``valid_to``, ``is_current = false``) and opens a new one."""


class IngestSpec(BaseModel):
    """What an ingest does, beyond the table and the rows."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: IngestMode = IngestMode.APPEND
    watermark: str | None = None
    """``incremental``: the column compared with the table's maximum."""
    key: tuple[str, ...] = ()
    """``bitemporal``: the primary-key columns."""
    delete_missing: bool = False
    """``bitemporal``: close the current version of keys absent from the batch."""
    valid_at: datetime | None = None
    """``bitemporal``: when the new versions become valid (default: now, UTC)."""


class IngestResult(BaseModel):
    """What an ingest wrote. Its content hash covers the snapshot id, so lineage
    links a later knot to the exact table version the ingest produced."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    table: str
    """``namespace.table``."""
    mode: IngestMode
    snapshot_id: int | None
    """The table's current snapshot after the ingest (``None``: the table has none)."""
    committed: bool
    """``False`` when there was nothing to write (the snapshot is the previous one)."""
    rows_received: int
    rows_written: int
    """Rows added to the table (for ``bitemporal``: opened plus closed versions)."""
    opened: int = 0
    """``bitemporal``: new current versions (new keys and changed rows)."""
    closed: int = 0
    """``bitemporal``: current versions closed (changed rows and deleted keys)."""
