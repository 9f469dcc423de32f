"""SQL loads as knots: merge a daily price list (re-running a day changes nothing),
keep a customer dimension as SCD2 over event time with a late-arriving row, plan a
load with a dry run, and follow the load's lineage back to the rows it loaded.

Run it with ``python examples/sql_load.py``; the warehouse is a SQLite file in a
temporary directory (``duckdb:///...`` or ``postgresql://...`` work the same way).
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from pirn_like import KnotConfig, Parameter, RunRequest, Tapestry, knot
from pirn_like.backends import SQLiteHistory
from pirn_like.capabilities.sql import SQLiteTarget, SqlLoad, SqlLoadResult

PRICES = {
    "monday": [
        {"sku": "A1", "name": "anvil", "price": 20.0},
        {"sku": "B2", "name": "bell", "price": 5.0},
    ],
    "tuesday": [
        {"sku": "A1", "name": "anvil", "price": 20.0},
        {"sku": "B2", "name": "bell", "price": 6.5},
        {"sku": "C3", "name": "clamp", "price": 3.0},
    ],
}


def day(d: int) -> datetime:
    return datetime(2026, 1, d, tzinfo=UTC)


@knot
async def price_list(day: str) -> list[dict[str, object]]:
    return PRICES[day]


@knot
async def customer_updates(batch: int) -> list[dict[str, object]]:
    batches = [
        [{"id": 7, "tier": "bronze", "seen_at": day(1)}],
        [{"id": 7, "tier": "gold", "seen_at": day(20)}],
        [{"id": 7, "tier": "silver", "seen_at": day(10)}],  # arrives late
    ]
    return batches[batch]


def counts(result: SqlLoadResult) -> str:
    return (
        f"{result.inserted} inserted, {result.updated} updated, {result.closed} closed, "
        f"{result.unchanged} unchanged"
    )


async def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="pirn-sql-"))
    history = SQLiteHistory(workdir / "runs.db")
    target = SQLiteTarget(workdir / "warehouse.db")
    with Tapestry(history=history) as prices:
        rows = price_list(day=Parameter("day", str), _config=KnotConfig(id="rows"))
        SqlLoad(
            target=target,
            table="prices",
            mode="merge",
            keys=["sku"],
            rows=rows,
            _config=KnotConfig(id="load"),
        )
    with Tapestry(history=history) as customers:
        updates = customer_updates(batch=Parameter("batch", int), _config=KnotConfig(id="rows"))
        SqlLoad(
            target=target,
            table="customers",
            mode="scd2",
            keys=["id"],
            event_time="seen_at",
            rows=updates,
            _config=KnotConfig(id="load"),
        )
    async with target, prices, customers:
        for name in ("monday", "tuesday", "tuesday"):
            run = await prices.run(RunRequest(parameters={"day": name}))
            print(f"prices {name}: {counts(run.outputs['load'])}")
        loaded = run.lineage_for("load")
        graph = await history.provenance(loaded.output_hash or "")
        sources = sorted(
            data["record"].knot_id
            for node, data in graph.nodes(data=True)
            if data.get("kind") == "execution" and node.startswith(f"exec:{run.run_id}/")
        )
        print(f"lineage of the last load: {sources}")

        for batch in range(3):
            run = await customers.run(RunRequest(parameters={"batch": batch}))
            print(f"customers batch {batch}: {counts(run.outputs['load'])}")
        planner = SqlLoad(
            target=target,
            table="customers",
            mode="scd2",
            keys=["id"],
            event_time="seen_at",
            dry_run=True,
            rows=[],
            _config=KnotConfig(id="plan"),
        )
        plan = await planner.process(rows=[{"id": 7, "tier": "platinum", "seen_at": day(25)}])
        print(f"dry run: {[(c.action, c.key['valid_from']) for c in plan.preview]}")
        async with target.transaction() as tx:
            versions = await tx.fetch(
                "SELECT tier, substr(valid_from, 1, 10), substr(valid_to, 1, 10) "
                "FROM customers ORDER BY valid_from"
            )
        timeline = " -> ".join(f"{tier} [{start}, {end or 'now'})" for tier, start, end in versions)
        print(f"customer 7: {timeline}")


if __name__ == "__main__":
    asyncio.run(main())
