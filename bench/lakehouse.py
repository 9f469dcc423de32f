"""What the lakehouse knot costs: 100k rows appended to an Iceberg table through
``LakehouseIngest`` in a tapestry run, against pyiceberg's ``table.append`` called
directly, in one process, alternating, best of the repeats.

    python bench/lakehouse.py            # writes the "Lakehouse ingest" section
    python bench/lakehouse.py --quick    # fewer repeats, no doc update

The knot's time is the whole run: hashing the 100k-row input and the output, the
lineage record, the worker-thread hop, and the append itself (on a table the engine
keeps loaded, as the direct call does).
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import pyarrow as pa
from measure import REPO_ROOT, write_section
from pyiceberg.catalog.sql import SqlCatalog

from pirn_like import KnotConfig, Parameter, RunRequest, Tapestry, content_hash
from pirn_like.capabilities.lakehouse import IcebergLakehouse, IngestResult, LakehouseIngest

DOC = REPO_ROOT / "docs" / "performance.md"
START, END = "<!-- lakehouse:start -->", "<!-- lakehouse:end -->"
ROWS = 100_000
TARGET = 1.2  # the knot at most 1.2x the direct append


def _batch(rows: int) -> Any:
    return pa.table(
        {
            "id": pa.array(range(rows), pa.int64()),
            "symbol": [f"S{i % 500:03d}" for i in range(rows)],
            "price": pa.array([100.0 + (i % 1000) / 10 for i in range(rows)]),
            "qty": pa.array([i % 97 for i in range(rows)], pa.int32()),
        }
    )


async def _knot_append(tapestry: Tapestry, batch: Any) -> float:
    gc.collect()
    start = time.perf_counter()
    result = await tapestry.run(RunRequest(parameters={"batch": batch}))
    elapsed = time.perf_counter() - start
    assert result.succeeded, result.exceptions
    written = result.outputs["ingest"]
    assert isinstance(written, IngestResult)
    assert written.rows_written == batch.num_rows
    return elapsed


def _hash_seconds(batch: Any) -> float:
    gc.collect()
    start = time.perf_counter()
    content_hash(batch)
    return time.perf_counter() - start


def _direct_append(table: Any, batch: Any) -> float:
    gc.collect()
    start = time.perf_counter()
    table.append(batch)
    return time.perf_counter() - start


async def _measure(root: Path, batch: Any, repeats: int) -> tuple[float, ...]:
    """Best seconds of (the knot's run, the direct append, hashing the batch)."""
    knot_times: list[float] = []
    direct_times: list[float] = []
    hash_times: list[float] = []
    async with IcebergLakehouse.in_directory(root / "knot") as lakehouse:
        with Tapestry() as tapestry:
            rows = Parameter("batch", object)
            LakehouseIngest(
                lakehouse=lakehouse, table="trades", data=rows, _config=KnotConfig(id="ingest")
            )
        catalog = SqlCatalog(
            "direct",
            uri=f"sqlite:///{root / 'direct.db'}",
            warehouse=(root / "direct").as_uri(),
        )
        catalog.create_namespace("default")
        table = catalog.create_table("default.trades", schema=batch.schema)
        # Warm-up: first writes import modules and create the tables.
        await _knot_append(tapestry, batch)
        _direct_append(table, batch)
        for _ in range(repeats):
            knot_times.append(await _knot_append(tapestry, batch))
            direct_times.append(_direct_append(table, batch))
            hash_times.append(_hash_seconds(batch))
        catalog.engine.dispose()
    return min(knot_times), min(direct_times), min(hash_times)


async def main(quick: bool) -> None:
    repeats = 3 if quick else 15
    batch = _batch(ROWS)
    batches = {
        "4 columns, one of strings": batch,
        "3 numeric columns": batch.drop_columns(["symbol"]),
    }
    rows: list[tuple[str, float, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for index, (label, data) in enumerate(batches.items()):
            knot, direct, hashing = await _measure(Path(tmp) / str(index), data, repeats)
            rows.append((label, knot, direct, hashing))
            print(
                f"{label:>26}: knot {knot * 1e3:7.1f} ms, direct {direct * 1e3:7.1f} ms, "
                f"ratio {knot / direct:.2f}x (hashing the batch: {hashing * 1e3:.1f} ms)"
            )
    ratio = rows[0][1] / rows[0][2]
    print(f"target <= {TARGET}x on the first batch: {'PASS' if ratio <= TARGET else 'FAIL'}")
    if not quick:
        _write(rows, repeats)


def _write(rows: list[tuple[str, float, float, float]], repeats: int) -> None:
    ratio = rows[0][1] / rows[0][2]
    lines = [
        START,
        "## Lakehouse ingest",
        "",
        f"`python bench/lakehouse.py`: {ROWS:,} rows appended to a local Iceberg table (SQLite",
        "catalog, warehouse on disk), through a `LakehouseIngest` knot in a tapestry run and",
        "through pyiceberg's `table.append` on a loaded table, alternating in one process;",
        f"best of {repeats}. The knot's time is the whole run: hashing the input table and the",
        "output, the lineage record, the worker-thread hop and the append.",
        "",
        "| batch | knot in a run | direct append | vs direct | knot rows/s | hashing the batch |",
        "|---|---:|---:|---:|---:|---:|",
        *(
            f"| {label} | {knot * 1e3:,.1f} ms | {direct * 1e3:,.1f} ms | {knot / direct:.2f}x "
            f"| {ROWS / knot:,.0f} | {hashing * 1e3:,.1f} ms |"
            for label, knot, direct, hashing in rows
        ),
        "",
        f"Target: at most {TARGET}x the direct append with the string column: "
        f"{'met' if ratio <= TARGET else 'missed'} ({ratio:.2f}x).",
        "Most of the difference is the content hash of the input batch (last column,",
        "measured on its own): the hasher still copies a large encoding at each level of",
        "nesting before sha256 sees it. Numbers vary with the machine's load: rerun to compare.",
        END,
    ]
    write_section(DOC, START, END, lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    anyio.run(main, parser.parse_args().quick)
