"""Append: insert every row, once per distinct batch.

A ledger table (``pirn_like_sql_loads``) remembers the content hash of every batch
appended to each table, so a re-run of the same batch (a retried run, a redelivered
message) inserts nothing."""

from __future__ import annotations

from pirn_like.capabilities.sql._models import PlannedChange
from pirn_like.capabilities.sql._step import Counts, LoadStep
from pirn_like.capabilities.sql._table import bulk_insert

__all__ = ["LEDGER", "append"]

LEDGER = "pirn_like_sql_loads"


async def append(step: LoadStep) -> Counts:
    """Append the step's batch unless this table already has it."""
    tx, dialect, batch = step.tx, step.dialect, step.prepared.batch
    await tx.execute(
        f"CREATE TABLE IF NOT EXISTS {LEDGER} (table_name TEXT NOT NULL, "
        "rows_hash TEXT NOT NULL, row_count BIGINT NOT NULL, "
        "PRIMARY KEY (table_name, rows_hash))"
    )
    seen = await tx.fetch(
        dialect.sql(f"SELECT 1 FROM {LEDGER} WHERE table_name = ? AND rows_hash = ?"),
        (step.table, step.rows_hash),
    )
    count = len(batch.rows)
    if seen:
        return Counts(unchanged=count)
    shown = step.keys or batch.columns
    at = [batch.columns.index(c) for c in shown]
    preview = tuple(
        PlannedChange(action="insert", key={c: row[i] for c, i in zip(shown, at, strict=True)})
        for row in batch.rows[: step.preview_limit]
    )
    if not step.dry_run:
        await bulk_insert(tx, dialect, step.table, batch, step.prepared.types)
        await tx.execute(
            dialect.sql(
                f"INSERT INTO {LEDGER} (table_name, rows_hash, row_count) VALUES (?, ?, ?)"
            ),
            (step.table, step.rows_hash, count),
        )
    return Counts(inserted=count, preview=preview if step.dry_run else ())
