"""How SQLite, DuckDB and PostgreSQL differ for a load: column types, the catalog
query, how a batch is bulk-inserted and how values are adapted for the driver."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pirn_like.backends._sql import DUCKDB, POSTGRES, SQLITE, Dialect
from pirn_like.capabilities.sql._batch import Kind

__all__ = ["DUCKDB_LOADS", "POSTGRES_LOADS", "SQLITE_LOADS", "SqlDialect", "kind_of_type", "quote"]


def quote(name: str) -> str:
    """``name`` as a quoted identifier (``schema.table`` quotes each part)."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))


@dataclass(frozen=True, slots=True)
class SqlDialect:
    """One database's differences, as the load code uses them."""

    name: str
    params: Dialect
    """Placeholder style (``?`` or ``$1``), from the history backends."""
    types: Mapping[Kind | None, str]
    """The column type a new column of each kind gets."""
    columns_sql: str
    """``(schema or None, table)`` -> rows of (column name, declared type)."""
    bulk_by_column: bool
    """Insert a batch as one statement over column lists rather than row by row."""
    distinct: str = "IS DISTINCT FROM"
    """The null-safe inequality operator."""
    upsert_counts: Literal["changes", "returned", "xmax"] = "returned"
    """How an upsert reports what it changed: ``total_changes()`` around it (SQLite),
    the count the statement returns (DuckDB), or ``RETURNING (xmax = 0)`` per row
    (PostgreSQL: true for an inserted row)."""
    utc_reads: bool = False
    """Read time-zone-aware columns as UTC (DuckDB needs pytz to return them as they are)."""
    array_casts: bool = False
    """``unnest(?::type[])`` (PostgreSQL) rather than bare ``unnest(?)`` (DuckDB)."""
    adapters: Mapping[Kind, Callable[[Any], Any]] = field(
        default_factory=dict[Kind, Callable[[Any], Any]]
    )
    """Value conversions the driver needs for columns of a kind."""

    def sql(self, text: str) -> str:
        """``text`` (with ``?`` placeholders) in this dialect's style."""
        return self.params.sql(text)

    def insert(self, table: str, columns: Sequence[str], types: Sequence[str]) -> str:
        """The statement inserting a batch into ``table``: bound to rows, or to one list
        per column when ``bulk_by_column``."""
        names = ", ".join(map(quote, columns))
        if not self.bulk_by_column:
            marks = ", ".join("?" * len(columns))
            return self.sql(f"INSERT INTO {quote(table)} ({names}) VALUES ({marks})")
        if self.array_casts:
            arrays = ", ".join(f"?::{t}[]" for t in types)
            return self.sql(f"INSERT INTO {quote(table)} ({names}) SELECT * FROM unnest({arrays})")
        values = ", ".join("unnest(?)" for _ in columns)
        return self.sql(f"INSERT INTO {quote(table)} ({names}) SELECT {values}")


def kind_of_type(declared: str) -> Kind | None:
    """The kind of a column declared ``declared`` in any of the three databases; None
    for a type outside those a load creates (accepted as it is)."""
    text = declared.lower()
    rules = (
        ("bool", Kind.BOOL),
        ("int", Kind.INT),
        ("double", Kind.FLOAT),
        ("real", Kind.FLOAT),
        ("float", Kind.FLOAT),
        ("numeric", Kind.DECIMAL),
        ("decimal", Kind.DECIMAL),
        ("with time zone", Kind.TIMESTAMPTZ),
        ("timestamptz", Kind.TIMESTAMPTZ),
        ("timestamp", Kind.TIMESTAMP),
        ("date", Kind.DATE),
        ("char", Kind.TEXT),
        ("text", Kind.TEXT),
        ("string", Kind.TEXT),
        ("clob", Kind.TEXT),
        ("bytea", Kind.BYTES),
        ("blob", Kind.BYTES),
    )
    return next((kind for fragment, kind in rules if fragment in text), None)


def _iso_utc(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat()


_SQLITE_TYPES: dict[Kind | None, str] = {
    Kind.BOOL: "BOOLEAN",
    Kind.INT: "BIGINT",
    Kind.FLOAT: "DOUBLE",
    # Stored as text so no digit is lost (a DECIMAL column would round through REAL).
    Kind.DECIMAL: "DECIMAL_TEXT",
    Kind.TEXT: "TEXT",
    Kind.TIMESTAMP: "TIMESTAMP",
    Kind.TIMESTAMPTZ: "TIMESTAMPTZ",
    Kind.DATE: "DATE",
    Kind.BYTES: "BLOB",
    None: "TEXT",
}

SQLITE_LOADS = SqlDialect(
    name="sqlite",
    params=SQLITE,
    types=_SQLITE_TYPES,
    columns_sql="SELECT name, type FROM pragma_table_info(?2, COALESCE(?1, 'main'))",
    bulk_by_column=False,
    distinct="IS NOT",  # IS DISTINCT FROM needs SQLite 3.39
    upsert_counts="changes",
    # ISO text sorts in time order when every value has one offset: aware times as UTC.
    adapters={
        Kind.TIMESTAMP: dt.datetime.isoformat,
        Kind.TIMESTAMPTZ: _iso_utc,
        Kind.DATE: dt.date.isoformat,
        Kind.DECIMAL: str,
    },
)

_CATALOG = (
    "SELECT column_name, data_type FROM information_schema.columns WHERE "
    "table_schema = COALESCE(?, current_schema()) AND table_name = ? ORDER BY ordinal_position"
)

POSTGRES_LOADS = SqlDialect(
    name="postgresql",
    params=POSTGRES,
    types={
        Kind.BOOL: "BOOLEAN",
        Kind.INT: "BIGINT",
        Kind.FLOAT: "DOUBLE PRECISION",
        Kind.DECIMAL: "NUMERIC",
        Kind.TEXT: "TEXT",
        Kind.TIMESTAMP: "TIMESTAMP",
        Kind.TIMESTAMPTZ: "TIMESTAMPTZ",
        Kind.DATE: "DATE",
        Kind.BYTES: "BYTEA",
        None: "TEXT",
    },
    columns_sql=_CATALOG,
    bulk_by_column=True,
    array_casts=True,
    upsert_counts="xmax",
    adapters={Kind.FLOAT: float},  # asyncpg sends float8 only from floats
)

DUCKDB_LOADS = SqlDialect(
    name="duckdb",
    params=DUCKDB,
    types={
        Kind.BOOL: "BOOLEAN",
        Kind.INT: "BIGINT",
        Kind.FLOAT: "DOUBLE",
        Kind.DECIMAL: "DECIMAL(38, 10)",
        Kind.TEXT: "VARCHAR",
        Kind.TIMESTAMP: "TIMESTAMP",
        Kind.TIMESTAMPTZ: "TIMESTAMPTZ",
        Kind.DATE: "DATE",
        Kind.BYTES: "BLOB",
        None: "VARCHAR",
    },
    columns_sql=_CATALOG,
    bulk_by_column=True,
    utc_reads=True,
)
