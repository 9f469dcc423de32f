"""The target table as a load sees it: its columns, creating it, applying the drift
policy, and staging a batch in a temporary table."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pirn_like.backends._sql import Statements
from pirn_like.capabilities.sql._batch import Batch, Kind
from pirn_like.capabilities.sql._dialect import SqlDialect, kind_of_type, quote
from pirn_like.capabilities.sql._errors import SchemaDriftError, SqlLoadError
from pirn_like.capabilities.sql._models import DriftPolicy

__all__ = [
    "PreparedTable",
    "bulk_insert",
    "bulk_params",
    "prepare_table",
    "read_columns",
    "stage",
    "table_columns",
    "unstage",
]

_WIDENINGS = {(Kind.INT, Kind.FLOAT), (Kind.INT, Kind.DECIMAL), (Kind.FLOAT, Kind.DECIMAL)}


@dataclass(frozen=True, slots=True)
class PreparedTable:
    """The table after creation or drift handling, and the batch that fits it."""

    batch: Batch
    types: dict[str, str]
    """Declared type of every column of the table."""
    created: bool
    added: tuple[str, ...]
    dropped: tuple[str, ...]


async def table_columns(tx: Statements, dialect: SqlDialect, table: str) -> dict[str, str]:
    """Column name -> declared type of ``table``; empty if there is no such table."""
    schema, _, name = table.rpartition(".")
    rows = await tx.fetch(dialect.sql(dialect.columns_sql), (schema or None, name))
    return {str(column): str(declared) for column, declared in rows}


def _fits(incoming: Kind | None, existing: Kind | None) -> bool:
    if incoming is None or existing is None or incoming == existing:
        return True
    return (incoming, existing) in _WIDENINGS


async def prepare_table(
    tx: Statements,
    dialect: SqlDialect,
    table: str,
    batch: Batch,
    *,
    drift: DriftPolicy,
    extra: Sequence[tuple[str, str]] = (),
    primary_key: Sequence[str] = (),
) -> PreparedTable:
    """Create ``table`` from the batch's kinds (plus the ``extra`` (name, type) columns)
    when absent; otherwise check the batch against it under ``drift``."""
    existing = await table_columns(tx, dialect, table)
    if not existing:
        types = {c: dialect.types[batch.kinds[c]] for c in batch.columns}
        types.update(extra)
        columns = ", ".join(f"{quote(c)} {t}" for c, t in types.items())
        key = f", PRIMARY KEY ({', '.join(map(quote, primary_key))})" if primary_key else ""
        await tx.execute(f"CREATE TABLE {quote(table)} ({columns}{key})")
        return PreparedTable(batch, types, created=True, added=(), dropped=())
    missing_extra = [name for name, _ in extra if name not in existing]
    if missing_extra:
        raise SqlLoadError(
            f"table {table!r} exists without the column(s) {missing_extra} this load mode "
            "keeps; load into a new table or add them"
        )
    new = tuple(c for c in batch.columns if c not in existing)
    changed = tuple(
        c
        for c in batch.columns
        if c in existing and not _fits(batch.kinds[c], kind_of_type(existing[c]))
    )
    if changed or (new and drift is DriftPolicy.FAIL):
        parts = [f"new column(s) {list(new)}"] if new else []
        parts += (
            [
                "changed type(s) "
                + ", ".join(
                    f"{c!r} ({existing[c]} in the table, {batch.kinds[c]} given)" for c in changed
                )
            ]
            if changed
            else []
        )
        hint = (
            "types cannot change: cast the values or load into a new table"
            if changed
            else "pass drift='add_columns' to add them or drift='ignore' to drop them"
        )
        raise SchemaDriftError(
            f"rows do not fit table {table!r}: {'; '.join(parts)}; {hint}",
            new_columns=new,
            changed_columns=changed,
        )
    if new and drift is DriftPolicy.IGNORE:
        return PreparedTable(batch.without(new), existing, created=False, added=(), dropped=new)
    types = dict(existing)
    for c in new:
        types[c] = dialect.types[batch.kinds[c]]
        await tx.execute(f"ALTER TABLE {quote(table)} ADD COLUMN {quote(c)} {types[c]}")
    return PreparedTable(batch, types, created=False, added=new, dropped=())


def _adapters(
    dialect: SqlDialect, batch: Batch, types: dict[str, str]
) -> list[Callable[[Any], Any] | None]:
    """Per column, the conversion the driver needs for its values, if any."""
    found: list[Callable[[Any], Any] | None] = []
    for name in batch.columns:
        kind = kind_of_type(types[name]) or batch.kinds[name]
        found.append(dialect.adapters.get(kind) if kind is not None else None)
    return found


def _adapted_columns(
    batch: Batch, adapters: Sequence[Callable[[Any], Any] | None]
) -> list[list[Any]]:
    columns: list[list[Any]] = [list(c) for c in zip(*batch.rows, strict=True)]
    for i, adapt in enumerate(adapters):
        if adapt is not None:
            columns[i] = [None if v is None else adapt(v) for v in columns[i]]
    return columns


def bulk_params(
    dialect: SqlDialect, batch: Batch, types: dict[str, str], *, adapt: bool = True
) -> list[Any]:
    """What ``dialect.insert`` binds for ``batch``: one list per column when
    ``bulk_by_column``, else one tuple per row. ``adapt=False`` for values read from
    the database (already as the driver wants them)."""
    adapters = _adapters(dialect, batch, types) if adapt else [None for _ in batch.columns]
    if dialect.bulk_by_column:
        return _adapted_columns(batch, adapters)
    if any(adapters):
        return list(zip(*_adapted_columns(batch, adapters), strict=True))
    return batch.rows


async def bulk_insert(
    tx: Statements,
    dialect: SqlDialect,
    table: str,
    batch: Batch,
    types: dict[str, str],
    *,
    adapt: bool = True,
) -> None:
    """Insert every row of ``batch`` into ``table`` in the dialect's fastest way."""
    if not batch.rows:
        return
    sql = dialect.insert(table, batch.columns, [types[c] for c in batch.columns])
    params = bulk_params(dialect, batch, types, adapt=adapt)
    if dialect.bulk_by_column:
        await tx.execute(sql, params)
    else:
        await tx.insert_rows(sql, params)


def read_columns(
    dialect: SqlDialect, alias: str, columns: Sequence[str], types: dict[str, str]
) -> tuple[str, Callable[[Sequence[Any]], tuple[Any, ...]]]:
    """A select list reading ``columns`` of table ``alias``, and the function that turns
    a fetched row into values that compare with the batch's and can be written back."""
    utc = [dialect.utc_reads and kind_of_type(types[c]) is Kind.TIMESTAMPTZ for c in columns]
    exprs = [
        f"timezone('UTC', {alias}.{quote(c)})" if as_utc else f"{alias}.{quote(c)}"
        for c, as_utc in zip(columns, utc, strict=True)
    ]
    if not any(utc):
        return ", ".join(exprs), tuple

    def convert(row: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(
            v.replace(tzinfo=dt.UTC) if as_utc and v is not None else v
            for v, as_utc in zip(row, utc, strict=True)
        )

    return ", ".join(exprs), convert


async def stage(
    tx: Statements,
    dialect: SqlDialect,
    batch: Batch,
    types: dict[str, str],
    *,
    adapt: bool = True,
) -> str:
    """A temporary table holding ``batch`` (dropped by ``unstage`` or a rollback)."""
    name = f"pirn_like_stage_{uuid.uuid4().hex[:12]}"
    columns = ", ".join(f"{quote(c)} {types[c]}" for c in batch.columns)
    await tx.execute(f"CREATE TEMP TABLE {quote(name)} ({columns})")
    await bulk_insert(tx, dialect, name, batch, types, adapt=adapt)
    return name


async def unstage(tx: Statements, name: str) -> None:
    """Drop the temporary table ``name``."""
    await tx.execute(f"DROP TABLE {quote(name)}")
