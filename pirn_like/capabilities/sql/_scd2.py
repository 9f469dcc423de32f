"""SCD2: every version of a key kept, with ``valid_from`` / ``valid_to`` /
``is_current``; the row's event-time column decides where its version starts.

The batch is staged, the existing versions of its keys are read, and each key's
timeline is rebuilt in memory, rows in event-time order:

- a row whose values equal the version in force at its event time changes nothing;
- otherwise a version starts at its event time and runs until the next version
  starts (``valid_to`` NULL and current if none does), and the version it splits
  ends there: a late-arriving row lands between its neighbours without breaking the
  timeline;
- a row with the event time of an existing version corrects that version in place;
- a row older than every version, with the first version's values, moves that
  version's start back instead of repeating it.

Changed versions are deleted and written again with the new ones, in the same
transaction.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pirn_like.capabilities.sql._batch import Batch
from pirn_like.capabilities.sql._dialect import quote
from pirn_like.capabilities.sql._models import PlannedChange
from pirn_like.capabilities.sql._step import Counts, LoadStep
from pirn_like.capabilities.sql._table import bulk_insert, read_columns, stage, unstage

__all__ = ["SCD2_COLUMNS", "scd2"]

SCD2_COLUMNS = ("valid_from", "valid_to", "is_current")


@dataclass(slots=True)
class _Version:
    row: tuple[Any, ...]
    valid_from: Any
    valid_to: Any
    original: tuple[Any, ...] | None
    """(row, valid_from, valid_to) as read from the table; None for a new version."""

    def state(self) -> tuple[Any, ...]:
        return (self.row, self.valid_from, self.valid_to)


@dataclass(slots=True)
class _Plan:
    versions: dict[tuple[Any, ...], list[_Version]]
    unchanged: int = 0


def _rebuild(
    plan: _Plan,
    rows: Sequence[tuple[Any, ...]],
    key_at: Sequence[int],
    time_at: int,
    compare_at: Sequence[int],
) -> None:
    """Fold ``rows`` (in event-time order) into the timelines of ``plan``."""

    def same(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
        return all(a[i] == b[i] for i in compare_at)

    for row in rows:
        key = tuple(row[i] for i in key_at)
        when = row[time_at]
        timeline = plan.versions.setdefault(key, [])
        starts = [v.valid_from for v in timeline]
        at = bisect.bisect_right(starts, when) - 1
        if at >= 0 and timeline[at].valid_from == when:
            if timeline[at].row == row:
                plan.unchanged += 1
            else:
                timeline[at].row = row  # a correction of that version
            continue
        before = timeline[at] if at >= 0 else None
        after = timeline[at + 1] if at + 1 < len(timeline) else None
        if before is not None and same(before.row, row):
            plan.unchanged += 1
            continue
        if before is None and after is not None and same(after.row, row):
            after.valid_from, after.row = when, row  # the first version started earlier
            continue
        new = _Version(row, when, after.valid_from if after else None, original=None)
        if before is not None:
            before.valid_to = when
        timeline.insert(at + 1, new)


async def scd2(step: LoadStep) -> Counts:
    """Fold the batch into the table's versions (see the module docs)."""
    tx, dialect, batch = step.tx, step.dialect, step.prepared.batch
    assert step.event_time is not None  # checked by SqlLoad
    columns = batch.columns
    key_at = [columns.index(k) for k in step.keys]
    time_at = columns.index(step.event_time)
    compare_at = [columns.index(c) for c in step.compare]
    types = step.prepared.types
    stage_name = await stage(tx, dialect, batch, types)
    versions, read_version = read_columns(dialect, "t", (*columns, "valid_from", "valid_to"), types)
    staged, read_staged = read_columns(dialect, "s", columns, types)
    match = " AND ".join(f"s.{quote(k)} = t.{quote(k)}" for k in step.keys)
    existing = [
        read_version(row)
        for row in await tx.fetch(
            f"SELECT {versions} FROM {quote(step.table)} t WHERE EXISTS "
            f"(SELECT 1 FROM {quote(stage_name)} s WHERE {match})"
        )
    ]
    incoming = [
        read_staged(row) for row in await tx.fetch(f"SELECT {staged} FROM {quote(stage_name)} s")
    ]
    await unstage(tx, stage_name)
    # Values as the database returns them on both sides, so they compare alike.
    plan = _Plan(versions=defaultdict(list))
    for *values, valid_from, valid_to in existing:
        row = tuple(values)
        plan.versions[tuple(row[i] for i in key_at)].append(
            _Version(row, valid_from, valid_to, original=(row, valid_from, valid_to))
        )
    for timeline in plan.versions.values():
        timeline.sort(key=lambda v: v.valid_from)
    rows = sorted(incoming, key=lambda r: r[time_at])
    _rebuild(plan, rows, key_at, time_at, compare_at)
    return await _write(step, plan, key_at)


def _action(version: _Version) -> Literal["insert", "update", "close"]:
    if version.original is None:
        return "insert"
    row, valid_from, _ = version.original
    return "update" if (version.row, version.valid_from) != (row, valid_from) else "close"


async def _write(step: LoadStep, plan: _Plan, key_at: Sequence[int]) -> Counts:
    inserted: list[_Version] = []
    rewritten: list[_Version] = []
    closed = updated = 0
    for timeline in plan.versions.values():
        for version in timeline:
            if version.original is None:
                inserted.append(version)
            elif version.state() != version.original:
                rewritten.append(version)
                updated += _action(version) == "update"
                closed += version.valid_to != version.original[2]
    preview: list[PlannedChange] = []
    if step.dry_run:
        for version in (*inserted, *rewritten)[: step.preview_limit]:
            key: dict[str, object] = {
                k: version.row[i] for k, i in zip(step.keys, key_at, strict=True)
            }
            key["valid_from"] = version.valid_from
            preview.append(PlannedChange(action=_action(version), key=key))
    elif inserted or rewritten:
        await _replace(step, key_at, rewritten, [*rewritten, *inserted])
    return Counts(
        inserted=len(inserted),
        updated=updated,
        closed=closed,
        unchanged=plan.unchanged,
        preview=tuple(preview),
    )


async def _replace(
    step: LoadStep, key_at: Sequence[int], gone: Sequence[_Version], versions: Sequence[_Version]
) -> None:
    """Delete the original rows of ``gone`` and insert ``versions`` (values as read
    from the database: no conversion)."""
    tx, dialect, types = step.tx, step.dialect, step.prepared.types
    if gone:
        key_columns = (*step.keys, "valid_from")
        originals = [v.original for v in gone if v.original is not None]
        doomed = Batch(
            key_columns,
            [(*(row[i] for i in key_at), valid_from) for row, valid_from, _ in originals],
            dict.fromkeys(key_columns),
        )
        name = await stage(tx, dialect, doomed, types, adapt=False)
        table = quote(step.table.rpartition(".")[2])
        match = " AND ".join(f"g.{quote(c)} = {table}.{quote(c)}" for c in key_columns)
        await tx.execute(
            f"DELETE FROM {quote(step.table)} WHERE EXISTS "
            f"(SELECT 1 FROM {quote(name)} g WHERE {match})"
        )
        await unstage(tx, name)
    batch = step.prepared.batch
    columns = (*batch.columns, *SCD2_COLUMNS)
    rows = [(*v.row, v.valid_from, v.valid_to, v.valid_to is None) for v in versions]
    full = Batch(columns, rows, dict.fromkeys(columns))
    await bulk_insert(tx, dialect, step.table, full, types, adapt=False)
