"""The blocking half of ``IcebergLakehouse.ingest``: one batch into one Iceberg table.

Runs in a worker thread under the table's lock. A commit that loses a race with
another writer (another process, or a stale cached table) is retried from the
start on freshly loaded metadata, because incremental and bitemporal batches are
computed from what the table holds.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from pirn_like.capabilities.lakehouse._changes import (
    bitemporal_changes,
    check_bitemporal_batch,
    newer_than,
    with_bitemporal_columns,
)
from pirn_like.capabilities.lakehouse._errors import LakehouseError, SchemaConflictError
from pirn_like.capabilities.lakehouse._libs import pyarrow, pyarrow_compute, pyiceberg
from pirn_like.capabilities.lakehouse._models import IngestMode, IngestResult, IngestSpec

__all__ = ["as_arrow", "ingest_batch"]

_ATTEMPTS = 5
_TYPE_CHANGE = re.compile(r"Cannot change column type: (.+): (\S+) -> (\S+)")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def as_arrow(name: str, data: Any) -> Any:
    """``data`` (an Arrow Table, RecordBatch or list of row dicts) as an Arrow Table."""
    pa = pyarrow()
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, list):
        return pa.Table.from_pylist(data)
    raise TypeError(
        f"lakehouse table {name!r}: expected a pyarrow Table, RecordBatch or list of row "
        f"dicts, got {type(data).__name__}"
    )


def ingest_batch(
    catalog: Any, tables: dict[str, Any], name: str, data: Any, spec: IngestSpec
) -> IngestResult:
    """Write ``data`` into table ``name`` as ``spec`` says; ``tables`` caches loaded
    tables between calls (a stale one is caught by the commit and reloaded)."""
    batch = as_arrow(name, data)
    if spec.mode is IngestMode.INCREMENTAL and (
        spec.watermark is None or spec.watermark not in batch.column_names
    ):
        raise LakehouseError(
            f"table {name!r}: incremental ingest needs its watermark column "
            f"{spec.watermark!r} in the batch; columns: {batch.column_names}"
        )
    schema = batch.schema
    if spec.mode is IngestMode.BITEMPORAL:
        check_bitemporal_batch(name, batch, spec.key)
        schema = with_bitemporal_columns(batch.slice(0, 0), _EPOCH, current=True).schema
    if spec.mode is IngestMode.BITEMPORAL and spec.valid_at is None:
        # One valid time for every attempt, so a retried batch means the same thing.
        spec = spec.model_copy(update={"valid_at": datetime.now(UTC)})
    failed = pyiceberg("pyiceberg.exceptions").CommitFailedException
    for attempt in range(_ATTEMPTS):
        table = tables.get(name) or _load_or_create(catalog, name, schema)
        tables[name] = table
        try:
            return _ingest_into(table, name, batch, schema, spec)
        except failed as error:
            tables.pop(name, None)
            if attempt == _ATTEMPTS - 1:
                raise LakehouseError(
                    f"table {name!r}: the commit lost to other writers {_ATTEMPTS} times: {error}"
                ) from error
    raise AssertionError("unreachable")  # pragma: no cover


def _ingest_into(table: Any, name: str, batch: Any, schema: Any, spec: IngestSpec) -> IngestResult:
    _evolve(name, table, schema)
    before = table.current_snapshot()
    written, opened, closed = _write(table, name, batch, spec)
    after = table.current_snapshot()
    return IngestResult(
        table=name,
        mode=spec.mode,
        snapshot_id=None if after is None else after.snapshot_id,
        committed=after is not None and (before is None or before.snapshot_id != after.snapshot_id),
        rows_received=batch.num_rows,
        rows_written=written,
        opened=opened,
        closed=closed,
    )


def _load_or_create(catalog: Any, name: str, schema: Any) -> Any:
    # Not create_table_if_not_exists: it writes a metadata file before finding the
    # table exists, leaving one orphan file per ingest.
    exceptions = pyiceberg("pyiceberg.exceptions")
    try:
        return catalog.load_table(name)
    except exceptions.NoSuchTableError:
        pass
    catalog.create_namespace_if_not_exists(name.split(".", 1)[0])
    try:
        return catalog.create_table(name, schema=schema)
    except exceptions.TableAlreadyExistsError:  # another process created it meanwhile
        return catalog.load_table(name)


_SAME = {"large_string": "string", "large_binary": "binary"}


def _type_key(arrow_type: Any) -> str:
    text = str(arrow_type)
    return _SAME.get(text, text)


def _evolve(name: str, table: Any, schema: Any) -> None:
    """Add the batch's new columns to ``table``; a type the table cannot take raises."""
    known = {f.name: _type_key(f.type) for f in table.schema().as_arrow()}
    if all(known.get(f.name) == _type_key(f.type) for f in schema):
        return  # the common case: nothing to check or commit
    exceptions = pyiceberg("pyiceberg.exceptions")
    try:
        with table.update_schema() as update:
            update.union_by_name(schema)
    except (exceptions.ValidationError, ValueError, TypeError) as error:
        match = _TYPE_CHANGE.search(str(error))
        if match:
            raise SchemaConflictError(name, *match.groups()) from error
        raise LakehouseError(f"table {name!r}: the batch's schema does not fit: {error}") from error


def _write(table: Any, name: str, batch: Any, spec: IngestSpec) -> tuple[int, int, int]:
    """Commit the batch as the mode says; (rows written, versions opened, closed)."""
    match spec.mode:
        case IngestMode.APPEND:
            if batch.num_rows:
                table.append(batch)
            return batch.num_rows, 0, 0
        case IngestMode.SNAPSHOT:
            table.overwrite(batch)
            return batch.num_rows, 0, 0
        case IngestMode.INCREMENTAL:
            assert spec.watermark is not None
            fresh = newer_than(batch, spec.watermark, _max(table, spec.watermark))
            if fresh.num_rows:
                table.append(fresh)
            return fresh.num_rows, 0, 0
        case IngestMode.BITEMPORAL:
            return _write_bitemporal(table, name, batch, spec)


def _max(table: Any, column: str) -> object:
    if table.current_snapshot() is None:
        return None
    values = table.scan(selected_fields=(column,)).to_arrow().column(column)
    return pyarrow_compute().max(values).as_py()


def _write_bitemporal(table: Any, name: str, batch: Any, spec: IngestSpec) -> tuple[int, int, int]:
    expressions = pyiceberg("pyiceberg.expressions")
    assert spec.valid_at is not None
    valid_at = spec.valid_at
    valid_at = valid_at.replace(tzinfo=UTC) if valid_at.tzinfo is None else valid_at.astimezone(UTC)
    if table.current_snapshot() is None:
        current = table.schema().as_arrow().empty_table()
    else:
        current = table.scan(row_filter=expressions.EqualTo("is_current", True)).to_arrow()
    changes = bitemporal_changes(
        name, batch, current, spec.key, valid_at=valid_at, delete_missing=spec.delete_missing
    )
    if not changes.rows.num_rows:
        return 0, 0, 0
    with table.transaction() as tx:
        if changes.closed:
            tx.delete(_key_filter(expressions, changes.closing_keys))
        tx.append(changes.rows)
    return changes.rows.num_rows, changes.opened, changes.closed


def _key_filter(expressions: Any, keys: Any) -> Any:
    """``is_current AND key IN keys`` as a pyiceberg expression."""
    current = expressions.EqualTo("is_current", True)
    columns = keys.column_names
    if len(columns) == 1:
        return expressions.And(current, expressions.In(columns[0], keys.column(0).to_pylist()))
    each = [
        expressions.And(*(expressions.EqualTo(c, row[c]) for c in columns))
        for row in keys.to_pylist()
    ]
    return expressions.And(current, each[0] if len(each) == 1 else expressions.Or(*each))
