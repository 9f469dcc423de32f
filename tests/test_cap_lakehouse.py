"""Lakehouse capability: LakehouseIngest / LakehouseQuery on a real pyiceberg catalog.

Every test gets its own SQLite catalog and local warehouse in a temp dir.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import networkx as nx
import pyarrow as pa
import pytest

from pirn_like import KnotConfig, Parameter, RunRequest, RunResult, Tapestry, content_hash
from pirn_like._errors import ClosedResourceError, WiringError
from pirn_like.capabilities.lakehouse import (
    IcebergLakehouse,
    IngestMode,
    IngestResult,
    IngestSpec,
    LakehouseError,
    LakehouseIngest,
    LakehouseQuery,
    SchemaConflictError,
    SnapshotNotFoundError,
    TableNotFoundError,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
async def lakehouse(tmp_path: Path) -> AsyncIterator[IcebergLakehouse]:
    async with IcebergLakehouse.in_directory(tmp_path / "lake") as lh:
        yield lh


async def _run_ingest(
    lh: IcebergLakehouse, table: str, rows: object, **options: Any
) -> IngestResult:
    """One LakehouseIngest knot in a tapestry, fed ``rows`` as a constant."""
    valid_at = options.pop("valid_at", None)
    extra = {} if valid_at is None else {"valid_at": valid_at}
    with Tapestry() as t:
        LakehouseIngest(
            lakehouse=lh,
            table=table,
            data=rows,
            _config=KnotConfig(id="ingest"),
            **extra,
            **options,
        )
    result = await t.run(RunRequest())
    assert result.succeeded, result.exceptions
    out = result.outputs["ingest"]
    assert isinstance(out, IngestResult)
    return out


async def _run_query(
    lh: IcebergLakehouse, sql: str, tables: Sequence[str] | dict[str, str], **inputs: Any
) -> list[dict[str, Any]]:
    with Tapestry() as t:
        LakehouseQuery(
            lakehouse=lh, tables=tables, sql=sql, as_rows=True, _config=KnotConfig(id="q"), **inputs
        )
    result = await t.run(RunRequest())
    assert result.succeeded, result.exceptions
    return result.outputs["q"]


def _failure(result: RunResult) -> str:
    assert not result.succeeded
    (record,) = result.exceptions
    return f"{record.type}: {record.message}"


async def test_append_adds_every_batch_and_names_a_new_snapshot(
    lakehouse: IcebergLakehouse,
) -> None:
    first = await _run_ingest(lakehouse, "events", [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}])
    second = await _run_ingest(lakehouse, "events", pa.table({"id": [3], "v": ["c"]}))
    assert (first.table, first.mode, first.rows_written, first.committed) == (
        "default.events",
        IngestMode.APPEND,
        2,
        True,
    )
    assert second.snapshot_id not in (None, first.snapshot_id)
    rows = await _run_query(lakehouse, "SELECT id, v FROM events ORDER BY id", ["events"])
    assert rows == [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}, {"id": 3, "v": "c"}]


async def test_snapshot_replaces_contents_and_time_travel_reads_the_old_ones(
    lakehouse: IcebergLakehouse,
) -> None:
    old = await _run_ingest(lakehouse, "prices", [{"sym": "A", "px": 1.0}, {"sym": "B", "px": 2.0}])
    new = await _run_ingest(lakehouse, "prices", [{"sym": "C", "px": 3.0}], mode="snapshot")
    assert new.mode is IngestMode.SNAPSHOT
    assert new.rows_written == 1
    sql = "SELECT sym FROM prices ORDER BY sym"
    assert await _run_query(lakehouse, sql, ["prices"]) == [{"sym": "C"}]
    assert old.snapshot_id is not None
    at_old = await _run_query(lakehouse, sql, ["prices"], at={"prices": old.snapshot_id})
    assert at_old == [{"sym": "A"}, {"sym": "B"}]
    pinned = await _run_query(lakehouse, sql, ["prices"], snapshots=[old])
    assert pinned == at_old


async def test_as_of_reads_the_snapshot_current_at_that_time(
    lakehouse: IcebergLakehouse, tmp_path: Path
) -> None:
    first = await _run_ingest(lakehouse, "t", [{"x": 1}])
    await _run_ingest(lakehouse, "t", [{"x": 2}])
    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog(lakehouse.name, uri=lakehouse.catalog_url, warehouse=lakehouse.warehouse)
    snapshot = catalog.load_table("default.t").snapshot_by_id(first.snapshot_id)
    assert snapshot is not None
    then = datetime.fromtimestamp(snapshot.timestamp_ms / 1000, UTC)
    sql = "SELECT sum(x) AS s FROM t"
    assert await _run_query(lakehouse, sql, ["t"], as_of=then) == [{"s": 1}]
    assert await _run_query(lakehouse, sql, ["t"]) == [{"s": 3}]
    with pytest.raises(SnapshotNotFoundError, match="no snapshot as of"):
        await lakehouse.read("t", as_of=then - timedelta(days=1))
    with pytest.raises(SnapshotNotFoundError, match="has no snapshot 12345"):
        await lakehouse.read("t", snapshot_id=12345)
    with pytest.raises(TableNotFoundError, match=r"'default\.missing'"):
        await lakehouse.read("missing")


async def test_incremental_appends_only_rows_past_the_watermark(
    lakehouse: IcebergLakehouse,
) -> None:
    batch = [{"ts": 1, "v": "a"}, {"ts": 2, "v": "b"}]
    first = await _run_ingest(lakehouse, "ticks", batch, mode="incremental", watermark="ts")
    again = await _run_ingest(lakehouse, "ticks", batch, mode="incremental", watermark="ts")
    assert first.rows_written == 2
    assert first.committed
    # Re-ingesting the same batch is a no-op: same snapshot, so the same output hash.
    assert (again.rows_written, again.committed, again.snapshot_id) == (
        0,
        False,
        first.snapshot_id,
    )
    overlap = [{"ts": 2, "v": "b"}, {"ts": 3, "v": "c"}]
    later = await _run_ingest(lakehouse, "ticks", overlap, mode="incremental", watermark="ts")
    assert later.rows_written == 1
    assert later.rows_received == 2
    rows = await _run_query(lakehouse, "SELECT ts FROM ticks ORDER BY ts", ["ticks"])
    assert rows == [{"ts": 1}, {"ts": 2}, {"ts": 3}]


async def test_bitemporal_closes_changed_rows_opens_new_ones_and_leaves_the_rest(
    lakehouse: IcebergLakehouse,
) -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    t1 = t0 + timedelta(days=1)
    opts = {"mode": "bitemporal", "key": "id"}
    start = [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}]
    first = await _run_ingest(lakehouse, "dim", start, valid_at=t0, **opts)
    assert (first.opened, first.closed) == (2, 0)
    changed = [{"id": 1, "v": "a"}, {"id": 2, "v": "B"}, {"id": 3, "v": "c"}]
    second = await _run_ingest(lakehouse, "dim", changed, valid_at=t1, **opts)
    assert (second.opened, second.closed, second.rows_written) == (2, 1, 3)
    again = await _run_ingest(lakehouse, "dim", changed, valid_at=t1, **opts)
    assert (again.committed, again.snapshot_id, again.opened) == (False, second.snapshot_id, 0)
    rows = await _run_query(
        lakehouse,
        "SELECT id, v, valid_from, valid_to, is_current FROM dim ORDER BY id, valid_from",
        ["dim"],
    )
    assert [(r["id"], r["v"], r["valid_from"], r["valid_to"], r["is_current"]) for r in rows] == [
        (1, "a", t0, None, True),  # unchanged: still the version from t0
        (2, "b", t0, t1, False),
        (2, "B", t1, None, True),
        (3, "c", t1, None, True),
    ]


async def test_bitemporal_delete_missing_closes_absent_keys(lakehouse: IcebergLakehouse) -> None:
    opts = {"mode": "bitemporal", "key": ["region", "id"]}
    await _run_ingest(
        lakehouse,
        "acct",
        [{"region": "eu", "id": 1, "bal": 5}, {"region": "us", "id": 1, "bal": 7}],
        **opts,
    )
    kept = [{"region": "eu", "id": 1, "bal": 5}]
    result = await _run_ingest(lakehouse, "acct", kept, delete_missing=True, **opts)
    assert (result.opened, result.closed) == (0, 1)
    rows = await _run_query(
        lakehouse, "SELECT region, is_current FROM acct ORDER BY region", ["acct"]
    )
    assert rows == [{"region": "eu", "is_current": True}, {"region": "us", "is_current": False}]


async def test_bitemporal_refuses_duplicate_keys_and_reserved_columns(
    lakehouse: IcebergLakehouse,
) -> None:
    spec = IngestSpec(mode=IngestMode.BITEMPORAL, key=("id",))
    with pytest.raises(LakehouseError, match=r"more than one row for key \{'id': 1\}"):
        await lakehouse.ingest("d", [{"id": 1, "v": 1}, {"id": 1, "v": 2}], spec)
    with pytest.raises(LakehouseError, match=r"may not carry \['is_current'\]"):
        await lakehouse.ingest("d", [{"id": 1, "is_current": True}], spec)
    with pytest.raises(LakehouseError, match="key column 'id' has null values"):
        await lakehouse.ingest("d", [{"id": None, "v": 1}], spec)
    jan2 = datetime(2026, 1, 2, tzinfo=UTC)
    await lakehouse.ingest("d", [{"id": 1, "v": 1}], spec.model_copy(update={"valid_at": jan2}))
    earlier = spec.model_copy(update={"valid_at": datetime(2026, 1, 1)})  # naive: UTC
    with pytest.raises(LakehouseError, match="go forward in valid time"):
        await lakehouse.ingest("d", [{"id": 1, "v": 2}], earlier)


async def test_new_columns_evolve_the_schema_and_type_conflicts_name_both_types(
    lakehouse: IcebergLakehouse,
) -> None:
    await _run_ingest(lakehouse, "wide", [{"id": 1}])
    await _run_ingest(lakehouse, "wide", [{"id": 2, "note": "new"}])
    rows = await _run_query(lakehouse, "SELECT id, note FROM wide ORDER BY id", ["wide"])
    assert rows == [{"id": 1, "note": None}, {"id": 2, "note": "new"}]
    with Tapestry() as t:
        LakehouseIngest(
            lakehouse=lakehouse, table="wide", data=[{"id": "x"}], _config=KnotConfig(id="bad")
        )
    failure = _failure(await t.run(RunRequest()))
    assert "SchemaConflictError" in failure
    assert "column 'id' is long in the table but string in the data" in failure
    with pytest.raises(SchemaConflictError) as caught:
        await lakehouse.ingest("wide", [{"note": 3.5}], IngestSpec())
    assert (caught.value.column, caught.value.table_type, caught.value.data_type) == (
        "note",
        "string",
        "double",
    )


async def test_query_joins_tables_and_returns_an_arrow_table(lakehouse: IcebergLakehouse) -> None:
    await _run_ingest(lakehouse, "orders", [{"cust": 1, "amt": 10}, {"cust": 1, "amt": 5}])
    await _run_ingest(lakehouse, "crm.customers", [{"cust": 1, "name": "Ada"}])
    with Tapestry() as t:
        LakehouseQuery(
            lakehouse=lakehouse,
            tables={"o": "orders", "c": "crm.customers"},
            sql="SELECT c.name, sum(o.amt)::BIGINT AS total FROM o JOIN c USING (cust) GROUP BY 1",
            _config=KnotConfig(id="q"),
        )
    result = await t.run(RunRequest())
    table = result.outputs["q"]
    assert isinstance(table, pa.Table)
    assert table.to_pylist() == [{"name": "Ada", "total": 15}]
    assert result.lineage_for("q").output_hash == content_hash(table)
    with Tapestry() as bad:
        LakehouseQuery(
            lakehouse=lakehouse,
            tables=["orders"],
            sql="SELECT nope FROM orders",
            _config=KnotConfig(id="q"),
        )
    assert "lakehouse query failed" in _failure(await bad.run(RunRequest()))


async def test_lineage_links_the_query_to_the_ingest_snapshot_and_the_input_rows(
    lakehouse: IcebergLakehouse,
) -> None:
    with Tapestry() as t:
        rows = Parameter("rows", list)
        ingest = LakehouseIngest(
            lakehouse=lakehouse, table="sales", data=rows, _config=KnotConfig(id="ingest")
        )
        LakehouseQuery(
            lakehouse=lakehouse,
            tables=["sales"],
            sql="SELECT sum(amount) AS total FROM sales",
            snapshots=ingest,
            _config=KnotConfig(id="report"),
        )
    batch = [{"amount": 3}, {"amount": 4}]
    result = await t.run(RunRequest(parameters={"rows": batch}))
    assert result.succeeded, result.exceptions
    written: IngestResult = result.outputs["ingest"]
    ingest_hash = content_hash(written)
    assert result.lineage_for("ingest").output_hash == ingest_hash
    consumers = await t.history.query_lineage_by_input_hash(ingest_hash)
    assert [(r.run_id, r.knot_id) for r in consumers] == [(result.run_id, "report")]
    report_hash = result.lineage_for("report").output_hash
    assert report_hash is not None
    graph = await t.history.provenance(report_hash)
    upstream = nx.ancestors(graph, report_hash)
    assert {ingest_hash, content_hash(batch)} <= upstream
    # The snapshot id is part of the ingest's output, so another write is another hash.
    other = written.model_copy(update={"snapshot_id": (written.snapshot_id or 0) + 1})
    assert content_hash(other) != ingest_hash


async def test_config_hash_names_where_the_effect_went(tmp_path: Path) -> None:
    a = IcebergLakehouse.in_directory(tmp_path / "a")
    b = IcebergLakehouse.in_directory(tmp_path / "b")
    knots = [
        LakehouseIngest(lakehouse=lh, table=table, data=[], _config=KnotConfig(id="i"))
        for lh, table in ((a, "x"), (b, "x"), (a, "y"))
    ]
    assert len({k.config_hash for k in knots}) == 3
    secret = IcebergLakehouse("postgresql://u:hunter2@db/cat", "s3://bucket/wh")
    assert "hunter2" not in secret.identity
    assert "***" in secret.identity
    await a.aclose()
    with pytest.raises(ClosedResourceError, match="was closed"):
        await a.read("x")


async def test_concurrent_writers_to_one_table_all_commit(
    lakehouse: IcebergLakehouse, tmp_path: Path
) -> None:
    # Two knots of one run write the same table at once (serialized by the engine's
    # lock); a second engine on the same catalog holds a stale table and must retry.
    with Tapestry() as t:
        for i in range(3):
            LakehouseIngest(
                lakehouse=lakehouse, table="shared", data=[{"n": i}], _config=KnotConfig(id=f"w{i}")
            )
    assert (await t.run(RunRequest())).succeeded
    async with IcebergLakehouse.in_directory(tmp_path / "lake") as other:
        await other.ingest("shared", [{"n": 10}], IngestSpec())
        await lakehouse.ingest("shared", [{"n": 11}], IngestSpec())
        await other.ingest("shared", [{"n": 12}], IngestSpec())
    rows = await _run_query(lakehouse, "SELECT n FROM shared ORDER BY n", ["shared"])
    assert [r["n"] for r in rows] == [0, 1, 2, 10, 11, 12]


def test_wiring_errors_name_the_knot_and_the_fix(tmp_path: Path) -> None:
    lh = IcebergLakehouse.in_directory(tmp_path)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"mode": "upsert"}, "unknown mode 'upsert'"),
        ({"mode": "incremental"}, "needs watermark="),
        ({"mode": "bitemporal"}, "needs key="),
    ]
    for options, message in cases:
        with pytest.raises(WiringError, match=f"LakehouseIngest 'k'.*{message}"):
            LakehouseIngest(lakehouse=lh, table="t", data=[], _config=KnotConfig(id="k"), **options)
    with pytest.raises(WiringError, match="lakehouse= must be a Lakehouse"):
        LakehouseQuery(lakehouse=object(), tables=["t"], sql="", _config=KnotConfig(id="q"))  # type: ignore[arg-type]
    with pytest.raises(WiringError, match=r"LakehouseQuery 'q' has no input 'snapshot'"):
        LakehouseQuery(lakehouse=lh, tables=["t"], sql="", snapshot=1, _config=KnotConfig(id="q"))
    with pytest.raises(ValueError, match=r"lakehouse table 'a\.b\.c'"):
        lh.qualified("a.b.c")
    with pytest.raises(WiringError, match=r"LakehouseIngest 'k': lakehouse table 'bad name'"):
        LakehouseIngest(lakehouse=lh, table="bad name", data=[], _config=KnotConfig(id="k"))


def test_importing_the_capability_loads_no_optional_library() -> None:
    code = (
        "import sys, pirn_like.capabilities.lakehouse\n"
        "print(sorted(m for m in ('pyiceberg', 'pyarrow', 'duckdb') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


async def test_round_trip_on_an_s3_warehouse(
    tmp_path: Path, s3_endpoint: str, s3_bucket: str
) -> None:
    lh = IcebergLakehouse(
        f"sqlite:///{tmp_path / 'catalog.db'}",
        f"s3://{s3_bucket}/warehouse",
        properties={"s3.endpoint": s3_endpoint, "s3.region": "us-east-1"},
    )
    async with lh:
        written = await _run_ingest(lh, "remote", [{"k": "a", "n": 1}, {"k": "b", "n": 2}])
        rows = await _run_query(
            lh, "SELECT k FROM remote WHERE n > 1", ["remote"], snapshots=written
        )
    assert rows == [{"k": "b"}]
    assert lh.identity == f"iceberg:sqlite:///{tmp_path / 'catalog.db'}#s3://{s3_bucket}/warehouse"


async def test_a_query_pinned_to_several_ingests_waits_for_and_names_each(
    lakehouse: IcebergLakehouse,
) -> None:
    await lakehouse.ingest("left", [{"k": 0, "a": "old"}], IngestSpec())
    with Tapestry() as t:
        left = LakehouseIngest(
            lakehouse=lakehouse, table="left", data=[{"k": 1, "a": "x"}], _config=KnotConfig(id="l")
        )
        right = LakehouseIngest(
            lakehouse=lakehouse,
            table="right",
            data=[{"k": 1, "b": "y"}],
            _config=KnotConfig(id="r"),
        )
        LakehouseQuery(
            lakehouse=lakehouse,
            tables=["left", "right"],
            sql='SELECT count(*) AS n FROM "left" JOIN "right" USING (k)',
            snapshots=[left, right],
            as_rows=True,
            _config=KnotConfig(id="q"),
        )
    result = await t.run(RunRequest())
    assert result.outputs["q"] == [{"n": 1}]
    record = result.lineage_for("q")
    assert record.parent_knot_ids == {"snapshot_0": "l", "snapshot_1": "r"}
    assert record.parent_input_hashes["snapshot_0"] == content_hash(result.outputs["l"])
