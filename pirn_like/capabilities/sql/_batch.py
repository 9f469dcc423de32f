"""Rows in: lists of dicts, pydantic models or an Arrow table, turned into one batch of
named columns and tuples, with each column's kind and a content hash."""

from __future__ import annotations

import datetime as dt
import decimal
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from hashlib import sha256
from typing import Any

from pydantic import BaseModel

from pirn_like._errors import MissingExtraError
from pirn_like.capabilities.sql._errors import SqlLoadError

__all__ = ["Batch", "Kind", "batch_from", "rows_hash"]


class Kind(StrEnum):
    """A column's type, independent of the database."""

    BOOL = "bool"
    INT = "int"
    FLOAT = "float"
    DECIMAL = "decimal"
    TEXT = "text"
    TIMESTAMP = "timestamp"
    TIMESTAMPTZ = "timestamptz"
    DATE = "date"
    BYTES = "bytes"


_KINDS: dict[type, Kind] = {
    bool: Kind.BOOL,
    int: Kind.INT,
    float: Kind.FLOAT,
    decimal.Decimal: Kind.DECIMAL,
    str: Kind.TEXT,
    dt.date: Kind.DATE,
    bytes: Kind.BYTES,
}


@dataclass(frozen=True, slots=True)
class Batch:
    """Rows as tuples in the order of ``columns`` (sorted by name); ``kinds`` gives
    each column's kind, None for a column with only nulls."""

    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    kinds: dict[str, Kind | None]

    def without(self, dropped: Sequence[str]) -> Batch:
        """This batch without the columns ``dropped``."""
        if not dropped:
            return self
        keep = [i for i, c in enumerate(self.columns) if c not in dropped]
        pick = operator.itemgetter(*keep)
        rows = [(pick(r),) for r in self.rows] if len(keep) == 1 else [pick(r) for r in self.rows]
        columns = tuple(self.columns[i] for i in keep)
        return Batch(columns, rows, {c: self.kinds[c] for c in columns})

    def column(self, name: str) -> list[Any]:
        """The values of column ``name``."""
        i = self.columns.index(name)
        return [r[i] for r in self.rows]


def batch_from(rows: object, table: str) -> Batch:
    """``rows`` (a list of dicts or pydantic models, or a pyarrow Table) as a Batch.

    SqlLoadError for anything else, naming ``table``."""
    if type(rows).__module__.startswith("pyarrow") and hasattr(rows, "schema"):
        return _from_arrow(rows)
    if isinstance(rows, str | bytes | Mapping) or not isinstance(rows, Sequence):
        raise SqlLoadError(
            f"load into {table!r}: rows must be a list of dicts or pydantic models, or a "
            f"pyarrow Table; got {type(rows).__name__}"
        )
    items: Sequence[object] = rows  # type: ignore[assignment]
    dicts: Sequence[Mapping[str, Any]]
    if all(type(item) is dict for item in items):  # the common case: no copy
        dicts = items  # type: ignore[assignment]
    else:
        dicts = [_as_dict(item, table, i) for i, item in enumerate(items)]
    if not dicts:
        return Batch((), [], {})
    names: set[str] = set().union(*dicts)
    columns = tuple(sorted(names))
    for name in columns:
        if not isinstance(name, str) or not name:  # pyright: ignore[reportUnnecessaryIsInstance]
            raise SqlLoadError(f"load into {table!r}: column names must be non-empty text")
    pick = operator.itemgetter(*columns)
    try:
        values = [(pick(d),) for d in dicts] if len(columns) == 1 else [pick(d) for d in dicts]
    except KeyError:  # rows with different columns: a missing one is null
        values = [tuple(d.get(c) for c in columns) for d in dicts]
    by_column = zip(*values, strict=True)
    kinds = {c: _kind_of(table, c, list(v)) for c, v in zip(columns, by_column, strict=True)}
    return Batch(columns, values, kinds)


def _as_dict(item: object, table: str, index: int) -> Mapping[str, Any]:
    if isinstance(item, Mapping):
        return item  # type: ignore[return-value]
    if isinstance(item, BaseModel):
        return item.model_dump()
    raise SqlLoadError(
        f"load into {table!r}: row {index} is a {type(item).__name__}; rows must be dicts "
        "or pydantic models"
    )


def _kind_of(table: str, column: str, values: Sequence[Any]) -> Kind | None:
    types = set(map(type, values))
    types.discard(type(None))
    if not types:
        return None
    if types == {int, float}:
        return Kind.FLOAT
    if len(types) > 1:
        shown = ", ".join(sorted(t.__name__ for t in types))
        raise SqlLoadError(
            f"load into {table!r}: column {column!r} mixes value types ({shown}); give each "
            "column one type"
        )
    (kind_type,) = types
    if kind_type is dt.datetime:
        aware = {v.tzinfo is not None for v in values if v is not None}
        if len(aware) > 1:
            raise SqlLoadError(
                f"load into {table!r}: column {column!r} mixes naive and timezone-aware datetimes"
            )
        return Kind.TIMESTAMPTZ if aware == {True} else Kind.TIMESTAMP
    kind = _KINDS.get(kind_type)
    if kind is None:
        raise SqlLoadError(
            f"load into {table!r}: column {column!r} holds {kind_type.__name__} values; "
            "supported: bool, int, float, Decimal, str, datetime, date, bytes (serialize "
            "others to text first)"
        )
    return kind


def _from_arrow(table: Any) -> Batch:
    names = sorted(table.column_names)
    columns = [table.column(n).to_pylist() for n in names]
    kinds = {n: _arrow_kind(table.schema.field(n).type) for n in names}
    return Batch(tuple(names), list(zip(*columns, strict=True)), kinds)


def _arrow_kind(arrow_type: Any) -> Kind | None:
    import pyarrow as pa

    types = pa.types
    if types.is_null(arrow_type):
        return None
    checks = (
        (types.is_boolean, Kind.BOOL),
        (types.is_integer, Kind.INT),
        (types.is_floating, Kind.FLOAT),
        (types.is_decimal, Kind.DECIMAL),
        (lambda t: types.is_string(t) or types.is_large_string(t), Kind.TEXT),
        (types.is_date, Kind.DATE),
        (lambda t: types.is_binary(t) or types.is_large_binary(t), Kind.BYTES),
    )
    if types.is_timestamp(arrow_type):
        return Kind.TIMESTAMPTZ if arrow_type.tz else Kind.TIMESTAMP
    for check, kind in checks:
        if check(arrow_type):
            return kind
    raise SqlLoadError(f"Arrow type {arrow_type} is not supported by SqlLoad")


def rows_hash(batch: Batch) -> str:
    """``sha256:`` over the batch's columns and rows, encoded by orjson (JSON keeps
    ``1``, ``1.0`` and ``true`` apart); fast enough for 100k-row batches."""
    try:
        import orjson
    except ImportError as exc:  # every driver's extra brings it
        raise MissingExtraError("SqlLoad", "sqlite", "orjson") from exc

    encoded = orjson.dumps([batch.columns, batch.rows], default=_json_default)
    return "sha256:" + sha256(encoded).hexdigest()


def _json_default(value: object) -> object:
    if isinstance(value, decimal.Decimal):
        return {"decimal": str(value)}
    if isinstance(value, bytes):
        return {"bytes": value.hex()}
    raise TypeError(f"cannot hash a {type(value).__name__}")
