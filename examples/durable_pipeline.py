"""A pipeline whose runs survive the process: SQLite history, values on disk,
a memoized knot, a failed run resumed, and a provenance question across runs.

    python examples/durable_pipeline.py [DIRECTORY]

Without a directory it works in a fresh temporary one.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

import networkx as nx

from pirn_like import KnotConfig, Parameter, RunRequest, Tapestry, content_hash, knot

executed: list[str] = []
prices_available = False


@knot
async def load_orders(day: str) -> list[dict[str, object]]:
    executed.append("load_orders")
    return [{"id": f"{day}-1", "sku": "tea", "qty": 2}, {"id": f"{day}-2", "sku": "jam", "qty": 1}]


@knot
async def price_list() -> dict[str, float]:
    executed.append("price_list")
    if not prices_available:
        raise ConnectionError("the price service is down")
    return {"tea": 4.5, "jam": 3.0}


@knot
async def revenue(orders: list[dict[str, object]], prices: dict[str, float]) -> float:
    executed.append("revenue")
    return sum(prices[str(o["sku"])] * int(str(o["qty"])) for o in orders)


def build(directory: Path) -> Tapestry:
    t = Tapestry(
        history=f"sqlite:///{directory / 'runs.db'}",
        data_store=f"file://{directory / 'values'}",
    )
    with t:
        orders = load_orders(day=Parameter("day", str), _config=KnotConfig(id="orders", cache=True))
        prices = price_list(_config=KnotConfig(id="prices"))
        revenue(orders=orders, prices=prices, _config=KnotConfig(id="revenue"))
    return t


async def main(directory: Path) -> None:
    global prices_available
    async with build(directory) as t:
        failed = await t.run(RunRequest(parameters={"day": "monday"}))
        print("first run:", failed.status.value, [e.type for e in failed.exceptions])

        prices_available = True
        resumed = await t.resume(failed.run_id)
        print("resumed:", resumed.status.value, "revenue", resumed.outputs["revenue"])
        print("executed so far:", executed)

        again = await t.run(RunRequest(parameters={"day": "monday"}))
        hit = again.lineage_for("orders")
        print("monday again: orders replayed from the first run:", hit.cached_from == failed.run_id)

        tuesday = await t.run(RunRequest(parameters={"day": "tuesday"}))
        miss = await t.history.explain_miss(tuesday.run_id, "orders")
        print("tuesday's orders executed because:", miss.changed if miss else None)

        graph = await t.history.provenance(content_hash("monday"))
        runs = sorted(
            {
                graph.nodes[n]["run_id"]
                for n in nx.descendants(graph, content_hash("monday"))
                if graph.nodes[n]["kind"] == "execution" and graph.nodes[n]["knot_id"] == "revenue"
            }
        )
        print("revenue figures derived from day='monday':", len(runs))


if __name__ == "__main__":
    if len(sys.argv) > 1:
        asyncio.run(main(Path(sys.argv[1])))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(main(Path(tmp)))
