"""What each ingest mode adds and removes, computed on Arrow tables (no catalog I/O).

Row matching runs in DuckDB (``IS DISTINCT FROM`` compares nulls and numeric widths
the way a user expects); rows are then taken from the Arrow tables by position, so
the written rows keep the exact Arrow types of the batch and of the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pirn_like.capabilities.lakehouse._errors import LakehouseError
from pirn_like.capabilities.lakehouse._libs import duckdb, pyarrow, pyarrow_compute
from pirn_like.capabilities.lakehouse._models import BITEMPORAL_COLUMNS

__all__ = ["BitemporalChanges", "bitemporal_changes", "newer_than", "with_bitemporal_columns"]

_ROW = "__pirn_like_row"


def newer_than(data: Any, column: str, watermark: object) -> Any:
    """The rows of ``data`` whose ``column`` is above ``watermark`` (all rows if it is None)."""
    if watermark is None:
        return data
    pc = pyarrow_compute()
    return data.filter(pc.greater(data.column(column), pyarrow().scalar(watermark)))


def with_bitemporal_columns(data: Any, valid_from: datetime, *, current: bool) -> Any:
    """``data`` plus ``valid_from`` = ``valid_from``, ``valid_to`` null, ``is_current``."""
    pa = pyarrow()
    stamp = pa.timestamp("us", tz="UTC")
    n = data.num_rows
    data = data.append_column(pa.field("valid_from", stamp), pa.array([valid_from] * n, stamp))
    data = data.append_column(pa.field("valid_to", stamp), pa.nulls(n, stamp))
    current_flags = pa.array([current] * n, pa.bool_())
    return data.append_column(pa.field("is_current", pa.bool_()), current_flags)


@dataclass(frozen=True, slots=True)
class BitemporalChanges:
    """The outcome of comparing a batch with a table's current versions."""

    closing_keys: Any
    """Key columns (an Arrow table) of the current versions to close."""
    rows: Any
    """Rows to add: the closed versions, then the opened ones (an Arrow table)."""
    opened: int
    closed: int


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _positions(con: Any, sql: str) -> list[int]:
    return [row[0] for row in con.sql(sql).fetchall()]


def bitemporal_changes(
    table: str,
    batch: Any,
    current: Any,
    key: Sequence[str],
    *,
    valid_at: datetime,
    delete_missing: bool,
) -> BitemporalChanges:
    """Compare ``batch`` with ``current`` (the table's rows with ``is_current``).

    New keys and changed rows open versions valid from ``valid_at``; changed rows (and,
    with ``delete_missing``, keys missing from the batch) close theirs at ``valid_at``.
    Unchanged rows are left alone.
    """
    pa = pyarrow()
    values = [c for c in batch.column_names if c not in key]
    inc = batch.append_column(_ROW, pa.array(range(batch.num_rows), pa.int64()))
    cur = current.append_column(_ROW, pa.array(range(current.num_rows), pa.int64()))
    on = " AND ".join(f"i.{_quote(k)} = c.{_quote(k)}" for k in key)
    differs = " OR ".join(f"i.{_quote(v)} IS DISTINCT FROM c.{_quote(v)}" for v in values)
    keys = ", ".join(_quote(k) for k in key)
    con = duckdb().connect()
    try:
        con.register("inc", inc)
        con.register("cur", cur)
        duplicate = con.sql(
            f"SELECT {keys} FROM inc GROUP BY ALL HAVING count(*) > 1 LIMIT 1"
        ).fetchall()
        if duplicate:
            raise LakehouseError(
                f"table {table!r}: the batch has more than one row for key "
                f"{dict(zip(key, duplicate[0], strict=True))}; a bitemporal batch holds "
                "one row per key"
            )
        pairs = (
            con.sql(
                f"SELECT i.{_ROW}, c.{_ROW} FROM inc i JOIN cur c ON {on} WHERE {differs}"
            ).fetchall()
            if values
            else []
        )
        new = _positions(con, f"SELECT i.{_ROW} FROM inc i ANTI JOIN cur c ON {on}")
        gone = (
            _positions(con, f"SELECT c.{_ROW} FROM cur c ANTI JOIN inc i ON {on}")
            if delete_missing
            else []
        )
    finally:
        con.close()
    closing = sorted([c for _, c in pairs] + gone)
    opening = sorted([i for i, _ in pairs] + new)
    closed = current.take(pa.array(closing, pa.int64()))
    if closing:
        latest = pyarrow_compute().max(closed.column("valid_from")).as_py()
        if latest is not None and latest > valid_at:
            raise LakehouseError(
                f"table {table!r}: the batch is valid from {valid_at.isoformat()}, before a "
                f"current version it would close (valid from {latest.isoformat()}); "
                "bitemporal batches go forward in valid time"
            )
    stamp = pa.timestamp("us", tz="UTC")
    closed = closed.set_column(
        closed.schema.get_field_index("valid_to"),
        pa.field("valid_to", stamp),
        pa.array([valid_at] * len(closing), stamp),
    )
    closed = closed.set_column(
        closed.schema.get_field_index("is_current"),
        pa.field("is_current", pa.bool_()),
        pa.array([False] * len(closing), pa.bool_()),
    )
    opened = with_bitemporal_columns(
        batch.take(pa.array(opening, pa.int64())), valid_at, current=True
    )
    rows = pa.concat_tables([closed, opened], promote_options="permissive")
    return BitemporalChanges(
        closing_keys=closed.select(list(key)),
        rows=rows,
        opened=len(opening),
        closed=len(closing),
    )


def check_bitemporal_batch(table: str, batch: Any, key: Sequence[str]) -> None:
    """Refuse a batch without its key columns, with nulls in them, or carrying the
    bitemporal columns the ingest maintains itself."""
    reserved = sorted(set(batch.column_names) & set(BITEMPORAL_COLUMNS))
    if reserved:
        raise LakehouseError(
            f"table {table!r}: a bitemporal batch may not carry {reserved}; the ingest "
            "sets valid_from, valid_to and is_current itself"
        )
    for column in key:
        if column not in batch.column_names:
            raise LakehouseError(
                f"table {table!r}: key column {column!r} is not in the batch; "
                f"columns: {batch.column_names}"
            )
        if batch.column(column).null_count:
            raise LakehouseError(f"table {table!r}: key column {column!r} has null values")
