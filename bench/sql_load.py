"""What SqlLoad costs: 100k rows merged through the knot in a tapestry run against the
driver called directly with one ``INSERT ... ON CONFLICT DO UPDATE`` over the same rows,
on SQLite, DuckDB and Postgres, in one process, one after another.

    python bench/sql_load.py            # writes the "SQL loads" section
    python bench/sql_load.py --quick    # fewer repeats, no doc update

Each measured load merges 100k rows into a table holding 100k rows of which 10% differ
(alternating between two versions, so every repeat does the same work), and the first
load inserts all 100k into an empty table. The direct side starts from the same list
of dicts and turns it into the driver's parameters inside the timed region, as a
caller would: ``executemany`` on sqlite3 and asyncpg, one ``unnest`` statement over
column lists on DuckDB (its ``executemany`` takes ~10 ms a row). Postgres is a real
server started here (pgserver) on a Unix socket.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from measure import REPO_ROOT, write_section

from pirn_like import KnotConfig, Parameter, RunRequest, Tapestry, content_hash, knot
from pirn_like.capabilities.sql import SqlLoad, SqlLoadResult, sql_target_from_url

DOC = REPO_ROOT / "docs" / "performance.md"
START, END = "<!-- sql_load:start -->", "<!-- sql_load:end -->"
TARGET = 1.2
ROWS = 100_000
COLUMNS = ("id", "name", "score", "flag")
UPSERT = (
    "INSERT INTO {table} (id, name, score, flag) {values} ON CONFLICT (id) DO UPDATE SET "
    "name = excluded.name, score = excluded.score, flag = excluded.flag"
)


def versions() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Two versions of 100k rows; every tenth row differs between them."""
    first = [{"id": i, "name": f"n{i}", "score": i * 0.5, "flag": i % 2 == 0} for i in range(ROWS)]
    second = [{**row, "score": row["score"] + 1} if row["id"] % 10 == 0 else row for row in first]
    return first, second


async def _best(
    load: Callable[[list[dict[str, Any]]], Awaitable[None]], repeats: int
) -> tuple[float, float]:
    """(the initial 100k-row insert, the best merge of 10% changed rows)."""
    first, second = versions()
    gc.collect()
    start = time.perf_counter()
    await load(first)
    insert = time.perf_counter() - start
    best = float("inf")
    for i in range(repeats):
        gc.collect()
        start = time.perf_counter()
        await load(second if i % 2 == 0 else first)
        best = min(best, time.perf_counter() - start)
    return insert, best


async def through_knot(url: str, repeats: int) -> tuple[float, float]:
    target = sql_target_from_url(url)
    chosen: dict[str, list[dict[str, Any]]] = {}

    @knot
    async def rows(version: str) -> list[dict[str, Any]]:
        return chosen[version]

    with Tapestry() as t:
        given = rows(version=Parameter("version", str), _config=KnotConfig(id="rows"))
        SqlLoad(
            target=target,
            table="items",
            mode="merge",
            keys=["id"],
            rows=given,
            _config=KnotConfig(id="load"),
        )
    async with target:

        async def load(batch: list[dict[str, Any]]) -> None:
            key = str(id(batch))
            chosen[key] = batch
            result = await t.run(RunRequest(parameters={"version": key}))
            assert result.succeeded, result.exceptions[:1]
            loaded = result.outputs["load"]
            assert isinstance(loaded, SqlLoadResult)
            assert loaded.inserted + loaded.updated in (ROWS, ROWS // 10), loaded

        return await _best(load, repeats)


async def sqlite_direct(path: Path, repeats: int) -> tuple[float, float]:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")  # as SQLiteTarget opens it
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(
        "CREATE TABLE items (id BIGINT PRIMARY KEY, name TEXT, score DOUBLE, flag BOOLEAN)"
    )
    sql = UPSERT.format(table="items", values="VALUES (?, ?, ?, ?)")

    async def load(batch: list[dict[str, Any]]) -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql, [(r["id"], r["name"], r["score"], r["flag"]) for r in batch])
        conn.execute("COMMIT")

    try:
        return await _best(load, repeats)
    finally:
        conn.close()


async def duckdb_direct(path: Path, repeats: int) -> tuple[float, float]:
    import duckdb

    conn = duckdb.connect(str(path))
    conn.execute(
        "CREATE TABLE items (id BIGINT PRIMARY KEY, name VARCHAR, score DOUBLE, flag BOOLEAN)"
    )
    sql = UPSERT.format(table="items", values="SELECT unnest(?), unnest(?), unnest(?), unnest(?)")

    async def load(batch: list[dict[str, Any]]) -> None:
        conn.execute("BEGIN TRANSACTION")
        conn.execute(sql, [[r[c] for r in batch] for c in COLUMNS])
        conn.execute("COMMIT")

    try:
        return await _best(load, repeats)
    finally:
        conn.close()


async def postgres_direct(url: str, repeats: int) -> tuple[float, float]:
    import asyncpg

    conn = await asyncpg.connect(url)
    await conn.execute("DROP TABLE IF EXISTS items_direct")
    await conn.execute(
        "CREATE TABLE items_direct (id BIGINT PRIMARY KEY, name TEXT, score DOUBLE PRECISION, "
        "flag BOOLEAN)"
    )
    sql = UPSERT.format(table="items_direct", values="VALUES ($1, $2, $3, $4)")

    async def load(batch: list[dict[str, Any]]) -> None:
        async with conn.transaction():
            await conn.executemany(
                sql, [(r["id"], r["name"], r["score"], r["flag"]) for r in batch]
            )

    try:
        return await _best(load, repeats)
    finally:
        await conn.close()


async def main(quick: bool) -> None:
    import pgserver  # type: ignore[import-untyped]

    repeats = 2 if quick else 5
    results: list[tuple[str, str, float, float]] = []
    hashing = _hashing_seconds()
    print(f"hashing 100k rows (the run does it once per load): {hashing:.3f} s")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        server = pgserver.get_server(base / "pg", cleanup_mode="stop")
        try:
            pg_url = server.get_uri()
            engines: list[
                tuple[
                    str,
                    Callable[[], Awaitable[tuple[float, float]]],
                    Callable[[], Awaitable[tuple[float, float]]],
                ]
            ] = [
                (
                    "SQLite",
                    lambda: through_knot(f"sqlite:///{base / 'knot.db'}", repeats),
                    lambda: sqlite_direct(base / "direct.db", repeats),
                ),
                (
                    "DuckDB",
                    lambda: through_knot(f"duckdb:///{base / 'knot.duckdb'}", repeats),
                    lambda: duckdb_direct(base / "direct.duckdb", repeats),
                ),
                (
                    "Postgres",
                    lambda: through_knot(pg_url, repeats),
                    lambda: postgres_direct(pg_url, repeats),
                ),
            ]
            for name, knot_side, direct_side in engines:
                k_insert, k_merge = await knot_side()
                d_insert, d_merge = await direct_side()
                results.append((name, "insert 100k (empty table)", k_insert, d_insert))
                results.append((name, "merge 100k (10% changed)", k_merge, d_merge))
                for workload, k, d in (
                    (" insert", k_insert, d_insert),
                    ("  merge", k_merge, d_merge),
                ):
                    print(
                        f"{name:>8}{workload}: knot {k:6.3f} s, direct {d:6.3f} s ({k / d:4.2f}x)"
                    )
        finally:
            server.cleanup()
    if not quick:
        _write(results, hashing)


def _hashing_seconds() -> float:
    """The best of three canonical content hashes of the 100k dicts."""
    rows, _ = versions()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        content_hash(rows)
        best = min(best, time.perf_counter() - start)
    return best


def _write(results: list[tuple[str, str, float, float]], hashing: float) -> None:
    sqlite_merge = next(r for r in results if r[0] == "SQLite" and r[1].startswith("merge"))
    ratio = sqlite_merge[2] / sqlite_merge[3]
    lines = [
        START,
        "## SQL loads",
        "",
        '`python bench/sql_load.py`: `SqlLoad(mode="merge")` in a tapestry run (a knot',
        "returning 100k rows as dicts, then the load) against the driver called directly",
        "with one `INSERT ... ON CONFLICT (id) DO UPDATE` over the same rows in one",
        "transaction (`executemany` on sqlite3 and asyncpg; one `unnest` statement on",
        "DuckDB, whose `executemany` takes ~10 ms a row). Merge: best of the repeats, each",
        "merging 100k rows into a table holding them, 10% changed; insert: the first load",
        "into an empty table. The direct side builds its parameters from the same dicts.",
        "",
        "| engine | workload | SqlLoad | direct | ratio | ratio without hashing the input |",
        "|---|---|---:|---:|---:|---:|",
        *(
            f"| {e} | {w} | {k:.3f} s | {d:.3f} s | {k / d:.2f}x | {(k - hashing) / d:.2f}x |"
            for e, w, k, d in results
        ),
        "",
        f"Target: at most {TARGET}x the direct cost for 100k rows (SQLite merge): "
        f"{ratio:.2f}x ({'met' if ratio <= TARGET else 'missed'}); the load alone, without "
        f"the run's hash of its input: {(sqlite_merge[2] - hashing) / sqlite_merge[3]:.2f}x.",
        "Most of the difference is lineage, not SQL: the run hashes the 100k-dict output of",
        f"the rows knot canonically ({hashing:.3f} s here, measured alone; the last column",
        "subtracts it). The load itself adds turning the dicts into a checked batch, its",
        "orjson content hash and two `COUNT(*)` around the upsert (SQLite, DuckDB) to tell",
        "inserts from updates. On Postgres the knot sends the batch as one `unnest`",
        "statement (column arrays), which beats `executemany`. Numbers vary with the",
        "machine's load: rerun to compare.",
        END,
    ]
    write_section(DOC, START, END, lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    asyncio.run(main(parser.parse_args().quick))
