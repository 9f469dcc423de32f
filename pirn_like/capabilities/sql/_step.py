"""What one load's mode works with, and what it reports back."""

from __future__ import annotations

from dataclasses import dataclass

from pirn_like.backends._sql import Statements
from pirn_like.capabilities.sql._dialect import SqlDialect
from pirn_like.capabilities.sql._models import PlannedChange
from pirn_like.capabilities.sql._table import PreparedTable

__all__ = ["Counts", "LoadStep"]


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadStep:
    """One load inside its transaction, the table prepared and the batch checked."""

    tx: Statements
    dialect: SqlDialect
    table: str
    prepared: PreparedTable
    keys: tuple[str, ...]
    compare: tuple[str, ...]
    """Columns whose change makes a row count as changed (merge, scd2)."""
    event_time: str | None
    dry_run: bool
    preview_limit: int
    rows_hash: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Counts:
    """What a mode did (or would do)."""

    inserted: int = 0
    updated: int = 0
    closed: int = 0
    unchanged: int = 0
    preview: tuple[PlannedChange, ...] = ()
