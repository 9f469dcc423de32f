"""The load's settings and its result, as frozen pydantic models and enums."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["DriftPolicy", "LoadMode", "PlannedChange", "SqlLoadResult"]


class LoadMode(StrEnum):
    """How rows reach the table."""

    APPEND = "append"
    """Insert every row. A batch whose rows were appended to the table before (same
    content hash) is skipped, so a re-run does not duplicate it."""
    MERGE = "merge"
    """Upsert on the keys: new keys are inserted, changed rows updated, equal rows left."""
    SCD2 = "scd2"
    """Keep every version of a key with ``valid_from`` / ``valid_to`` / ``is_current``;
    the event-time column decides where a version starts."""


class DriftPolicy(StrEnum):
    """What to do with rows whose columns differ from the existing table's."""

    FAIL = "fail"
    """Any new column or changed type is a ``SchemaDriftError``."""
    ADD_COLUMNS = "add_columns"
    """New columns are added (``ALTER TABLE ... ADD COLUMN``); a changed type fails."""
    IGNORE = "ignore"
    """New columns are dropped from the rows; a changed type fails."""


class PlannedChange(BaseModel):
    """One row a load changed (or, in a dry run, would change)."""

    model_config = ConfigDict(frozen=True)

    action: Literal["insert", "update", "close"]
    key: dict[str, object]
    """The row's key columns (all its columns for an append without keys); for scd2
    also the version's ``valid_from``."""


class SqlLoadResult(BaseModel):
    """What a ``SqlLoad`` did to its table. Its content hash identifies the effect: the
    target, the counts and ``rows_hash``, the hash of the rows loaded."""

    model_config = ConfigDict(frozen=True)

    target: str
    """The engine's identity (URL, password redacted)."""
    table: str
    mode: LoadMode
    rows: int
    """Rows in the batch."""
    inserted: int
    """Rows (merge, append) or versions (scd2) inserted."""
    updated: int
    """Rows whose values changed (merge); versions corrected in place (scd2)."""
    closed: int
    """scd2: existing versions whose ``valid_to`` was set or moved earlier."""
    unchanged: int
    """Rows the table already held as given."""
    dry_run: bool
    rows_hash: str
    """``sha256:`` over the loaded columns and rows (after the drift policy)."""
    added_columns: tuple[str, ...] = ()
    dropped_columns: tuple[str, ...] = ()
    created_table: bool = False
    preview: tuple[PlannedChange, ...] = ()
    """Dry runs only: the first ``preview_limit`` changes, inserts first."""
