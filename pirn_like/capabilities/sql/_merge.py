"""Merge: upsert on the keys with ``INSERT ... ON CONFLICT (keys) DO UPDATE ... WHERE
<a compared column differs>``, so equal rows are not rewritten and do not count.

A load runs one upsert statement over the whole batch and reads what it changed from
the database (see ``SqlDialect.upsert_counts``). A dry run stages the batch in a
temporary table and classifies it against the table instead (new key, changed,
equal), naming the rows it would change."""

from __future__ import annotations

from pirn_like.capabilities.sql._dialect import quote
from pirn_like.capabilities.sql._models import PlannedChange
from pirn_like.capabilities.sql._step import Counts, LoadStep
from pirn_like.capabilities.sql._table import bulk_params, read_columns, stage, unstage

__all__ = ["merge"]


async def merge(step: LoadStep) -> Counts:
    """Insert new keys, update changed rows, leave equal ones."""
    if step.dry_run:
        return await _plan(step)
    inserted, updated = await _upsert(step)
    return Counts(
        inserted=inserted,
        updated=updated,
        unchanged=len(step.prepared.batch.rows) - inserted - updated,
    )


def _differs(step: LoadStep, left: str, right: str) -> str:
    """SQL true when a compared column of ``left`` differs from ``right`` (or '')."""
    op = step.dialect.distinct
    return " OR ".join(f"{left}.{quote(c)} {op} {right}.{quote(c)}" for c in step.compare)


async def _upsert(step: LoadStep) -> tuple[int, int]:
    """Apply the batch; (inserted, updated)."""
    tx, dialect, batch = step.tx, step.dialect, step.prepared.batch
    types = step.prepared.types
    table = quote(step.table)
    updatable = [c for c in batch.columns if c not in step.keys]
    # ON CONFLICT's WHERE names the table's row by the table's own (unqualified) name.
    newer = _differs(step, quote(step.table.rpartition(".")[2]), "excluded")
    if newer and updatable:
        sets = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in updatable)
        action = f"DO UPDATE SET {sets} WHERE {newer}"
    else:
        action = "DO NOTHING"
    insert = dialect.insert(step.table, batch.columns, [types[c] for c in batch.columns])
    upsert = f"{insert} ON CONFLICT ({', '.join(map(quote, step.keys))}) {action}"
    params = bulk_params(dialect, batch, types)
    if dialect.upsert_counts == "xmax":
        rows = await tx.fetch(
            f"WITH up AS ({upsert} RETURNING (xmax = 0) AS fresh) "
            "SELECT COUNT(*) FILTER (WHERE fresh), COUNT(*) FILTER (WHERE NOT fresh) FROM up",
            params,
        )
        return int(rows[0][0]), int(rows[0][1])
    count = f"SELECT COUNT(*) FROM {table}"
    before = int((await tx.fetch(count))[0][0])
    if dialect.upsert_counts == "changes":
        start = int((await tx.fetch("SELECT total_changes()"))[0][0])
        await tx.insert_rows(upsert, params)
        changed = int((await tx.fetch("SELECT total_changes()"))[0][0]) - start
    else:
        changed = int((await tx.fetch(upsert, params))[0][0])
    inserted = int((await tx.fetch(count))[0][0]) - before
    return inserted, changed - inserted


async def _plan(step: LoadStep) -> Counts:
    """Classify the batch against the table without changing it."""
    tx, dialect, batch = step.tx, step.dialect, step.prepared.batch
    table = quote(step.table)
    stage_name = await stage(tx, dialect, batch, step.prepared.types)
    staged = quote(stage_name)
    keys = [quote(k) for k in step.keys]
    join = " AND ".join(f"s.{k} = t.{k}" for k in keys)
    absent = f"t.{keys[0]} IS NULL"  # keys are never null in a batch
    differs = _differs(step, "s", "t")
    changed = f"({absent} OR {differs})" if differs else absent
    counted = await tx.fetch(
        f"SELECT COALESCE(SUM(CASE WHEN {absent} THEN 1 ELSE 0 END), 0), "
        f"COALESCE(SUM(CASE WHEN {changed} AND NOT {absent} THEN 1 ELSE 0 END), 0) "
        f"FROM {staged} s LEFT JOIN {table} t ON {join}"
    )
    inserted, updated = (int(n) for n in counted[0])
    shown, read = read_columns(dialect, "s", step.keys, step.prepared.types)
    rows = await tx.fetch(
        f"SELECT {absent}, {shown} FROM {staged} s LEFT JOIN {table} t ON {join} "
        f"WHERE {changed} ORDER BY CASE WHEN {absent} THEN 0 ELSE 1 END "
        f"LIMIT {int(step.preview_limit)}"
    )
    await unstage(tx, stage_name)
    preview = tuple(
        PlannedChange(
            action="insert" if is_new else "update",
            key=dict(zip(step.keys, read(key), strict=True)),
        )
        for is_new, *key in rows
    )
    return Counts(
        inserted=inserted,
        updated=updated,
        unchanged=len(batch.rows) - inserted - updated,
        preview=preview,
    )
