"""A lakehouse pipeline on the embedded defaults: Iceberg tables in a temp directory.

Day by day, customer records go into a bitemporal table (a changed tier closes the
old version and opens a new one), orders are appended, and a report joins the orders
with the customers' current tiers, pinned to the snapshots the day's ingests made.
Lineage then links the report to the exact table versions it read.

    PYTHONPATH=. python examples/lakehouse.py
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pirn_like import KnotConfig, Parameter, RunRequest, Tapestry, content_hash
from pirn_like.capabilities.lakehouse import IcebergLakehouse, LakehouseIngest, LakehouseQuery

DAYS = [
    (
        [{"id": 1, "name": "Ada", "tier": "silver"}, {"id": 2, "name": "Lin", "tier": "silver"}],
        [{"order": 1, "customer": 1, "amount": 40}, {"order": 2, "customer": 2, "amount": 10}],
    ),
    (
        [{"id": 1, "name": "Ada", "tier": "gold"}, {"id": 2, "name": "Lin", "tier": "silver"}],
        [{"order": 3, "customer": 1, "amount": 25}],
    ),
]

REPORT = """
    SELECT c.tier, count(*) AS orders, sum(o.amount)::BIGINT AS revenue
    FROM orders o JOIN customers c ON c.id = o.customer AND c.is_current
    GROUP BY c.tier ORDER BY c.tier
"""


def build(lake: IcebergLakehouse) -> Tapestry:
    with Tapestry() as t:
        day = Parameter("day", datetime)
        customers = LakehouseIngest(
            lakehouse=lake,
            table="crm.customers",
            mode="bitemporal",
            key="id",
            data=Parameter("customers", list),
            valid_at=day,
            _config=KnotConfig(id="customers"),
        )
        orders = LakehouseIngest(
            lakehouse=lake,
            table="sales.orders",
            mode="incremental",
            watermark="order",
            data=Parameter("orders", list),
            _config=KnotConfig(id="orders"),
        )
        LakehouseQuery(
            lakehouse=lake,
            tables=["sales.orders", "crm.customers"],
            sql=REPORT,
            snapshots=[customers, orders],
            as_rows=True,
            _config=KnotConfig(id="report"),
        )
    return t


async def main() -> str:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as tmp:
        async with IcebergLakehouse.in_directory(Path(tmp) / "lake") as lake:
            t = build(lake)
            for n, (customers, orders) in enumerate(DAYS):
                result = await t.run(
                    RunRequest(
                        parameters={
                            "day": start + timedelta(days=n),
                            "customers": customers,
                            "orders": orders,
                        }
                    )
                )
                assert result.succeeded, result.exceptions
                changed = result.outputs["customers"]
                print(
                    f"day {n + 1}: customers opened {changed.opened}, closed {changed.closed}; "
                    f"orders +{result.outputs['orders'].rows_written}; "
                    f"report {result.outputs['report']}"
                )
            # The report's lineage names the customer snapshot it was computed from.
            snapshot = content_hash(result.outputs["customers"])
            readers = await t.history.query_lineage_by_input_hash(snapshot)
            linked = [r.knot_id for r in readers] == ["report"]
            tiers = [(row["tier"], row["revenue"]) for row in result.outputs["report"]]
    return f"lakehouse: revenue by current tier {tiers}; report linked to its snapshot: {linked}"


if __name__ == "__main__":
    print(asyncio.run(main()))
