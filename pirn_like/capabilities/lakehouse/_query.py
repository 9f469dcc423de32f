"""``LakehouseQuery``: SQL over lakehouse tables (read as Arrow, queried in DuckDB)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any

import anyio.to_thread

from pirn_like._errors import WiringError
from pirn_like.capabilities.lakehouse._errors import LakehouseError
from pirn_like.capabilities.lakehouse._libs import duckdb
from pirn_like.capabilities.lakehouse._models import IngestResult
from pirn_like.capabilities.lakehouse._protocol import Lakehouse
from pirn_like.core._config import KnotConfig
from pirn_like.core._knot import Knot, Ref, Registrar

__all__ = ["LakehouseQuery", "run_sql"]

_SNAPSHOT = "snapshot_"


def run_sql(tables: Mapping[str, Any], sql: str) -> Any:
    """Run ``sql`` in a fresh in-memory DuckDB where each Arrow table is a view under
    its alias; the result as an Arrow table. Blocking: call it in a worker thread."""
    con = duckdb().connect()
    try:
        for alias, table in tables.items():
            con.register(alias, table)
        try:
            return con.sql(sql).to_arrow_table()
        except duckdb().Error as error:
            raise LakehouseError(f"lakehouse query failed: {error}") from error
    finally:
        con.close()


def _aliases(node: str, tables: Mapping[str, str] | Sequence[str]) -> dict[str, str]:
    if isinstance(tables, str):
        tables = [tables]
    named = (
        dict(tables) if isinstance(tables, Mapping) else {t.rsplit(".", 1)[-1]: t for t in tables}
    )
    if not named or (not isinstance(tables, Mapping) and len(named) != len(tables)):
        raise WiringError(
            f"{node}: tables= must name at least one table, with distinct last parts "
            "(or pass a mapping {alias: table})"
        )
    return named


class LakehouseQuery(Knot):
    """Run the input ``sql`` over ``tables`` of ``lakehouse``; outputs an Arrow table
    (or, with ``as_rows=True``, a list of row dicts).

    ``tables`` is a list of names (each queried under its last part: ``sales`` for
    ``default.sales``) or a mapping ``{alias: table}``. Which version is read:
    ``snapshots`` (an ingest knot or ``IngestResult``, or a list of them; each
    becomes an input ``snapshot_<i>``) pins each written table to the snapshot the
    ingest made, so the query waits for the ingest and its lineage names that exact
    version; ``at={table: snapshot_id}`` pins by id;
    ``as_of`` (a datetime) reads the other tables as they were then; the rest are
    read at their current snapshot.
    """

    def __init__(
        self,
        *,
        lakehouse: Lakehouse,
        tables: Mapping[str, str] | Sequence[str],
        as_rows: bool = False,
        _config: KnotConfig | None = None,
        tapestry: Registrar | None = None,
        **inputs: Any,
    ) -> None:
        node = f"LakehouseQuery {getattr(_config, 'id', '?')!r}"
        if not isinstance(lakehouse, Lakehouse):
            raise WiringError(f"{node}: lakehouse= must be a Lakehouse, got {lakehouse!r}")
        self.lakehouse = lakehouse
        try:
            self.tables = {a: lakehouse.qualified(t) for a, t in _aliases(node, tables).items()}
        except ValueError as error:
            raise WiringError(f"{node}: {error}") from None
        self.as_rows = as_rows
        unknown = sorted(set(inputs) - {"sql", "snapshots", "at", "as_of"})
        if unknown:
            raise WiringError(
                f"{node} has no input {', '.join(map(repr, unknown))}; "
                "declared: ['sql', 'snapshots', 'at', 'as_of']"
            )
        snapshots = inputs.pop("snapshots", None)
        if snapshots is not None:
            one = isinstance(snapshots, Knot | Ref | IngestResult)
            for i, item in enumerate([snapshots] if one else list(snapshots)):
                inputs[f"{_SNAPSHOT}{i}"] = item
        super().__init__(_config=_config, tapestry=tapestry, **inputs)

    def identity_settings(self) -> dict[str, object]:
        return {
            **super().identity_settings(),
            "lakehouse": self.lakehouse.identity,
            "tables": self.tables,
            "as_rows": self.as_rows,
        }

    def _pins(self, given: Sequence[object], at: Mapping[str, int] | None) -> dict[str, int]:
        pins: dict[str, int] = {}
        qualified = set(self.tables.values())
        for result in given:
            if not isinstance(result, IngestResult):
                raise TypeError(
                    f"query {self.id!r}: snapshots= takes IngestResults, got "
                    f"{type(result).__name__}"
                )
            if result.table not in qualified:
                raise LakehouseError(
                    f"query {self.id!r}: snapshots= names table {result.table!r}, which the "
                    f"query does not read; tables: {sorted(qualified)}"
                )
            if result.snapshot_id is not None:
                pins[result.table] = result.snapshot_id
        for table, snapshot_id in (at or {}).items():
            pins[self.lakehouse.qualified(table)] = snapshot_id
        return pins

    async def process(
        self,
        sql: str,
        at: Mapping[str, int] | None = None,
        as_of: datetime | None = None,
        **inputs: Any,
    ) -> Any:
        # Only the snapshot_<i> inputs: the framework may pass other keywords here.
        given = [v for k, v in inputs.items() if k.startswith(_SNAPSHOT)]
        pins = self._pins(given, at)
        frames: dict[str, Any] = {}
        for alias, table in self.tables.items():
            snapshot_id = pins.get(table)
            frames[alias], _snapshot = await self.lakehouse.read(
                table, snapshot_id=snapshot_id, as_of=as_of if snapshot_id is None else None
            )
        result = await anyio.to_thread.run_sync(partial(run_sql, frames, sql))
        return result.to_pylist() if self.as_rows else result
