"""The demo: order records in, regional totals out, lineage joined across two runs.

Runs on the embedded defaults (in-memory store and history); stdlib only besides pirn_like.
Run it with ``python examples/demo.py`` or ``scripts/demo.sh``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pirn_like import (
    Branch,
    Gate,
    KnotConfig,
    Map,
    Parameter,
    Reduce,
    RunRequest,
    RunResult,
    Tapestry,
    content_hash,
    knot,
)

MONDAY = "A-1001,alice,EU,3,12.50\nA-1002,bob,US,1,99.00\nA-1003,carol,EU,10,4.20\n"
TUESDAY = "A-1001,alice,EU,3,12.50\nA-1004,dave,US,2,350.00\n"  # A-1001 was sent again
TAX = {"EU": 0.20, "US": 0.07}
Order = dict[str, Any]


@knot
async def parse_orders(csv_text: str) -> list[Order]:
    orders = []
    for line in csv_text.strip().splitlines():
        order_id, customer, region, qty, price = line.split(",")
        order = {"order_id": order_id, "customer": customer, "region": region}
        orders.append({**order, "qty": int(qty), "unit_price": float(price)})
    return orders


@knot
async def enrich(order: Order, tax: dict[str, float]) -> Order:
    net = round(order["qty"] * order["unit_price"], 2)
    return {**order, "net": net, "gross": round(net * (1 + tax[order["region"]]), 2)}


def add_to_region(totals: dict[str, float], order: Order) -> dict[str, float]:
    region = order["region"]
    return {**totals, region: round(totals.get(region, 0.0) + order["gross"], 2)}


@knot
async def decide(totals: dict[str, float], verdict: str) -> str:
    return f"{verdict}: {sum(totals.values()):.2f}"


def build() -> Tapestry:
    with Tapestry() as t:
        csv_text = Parameter("orders_csv", str)
        orders = parse_orders(csv_text=csv_text, _config=KnotConfig(id="orders"))
        enriched = Map(over=orders, each=enrich, tax=TAX, _config=KnotConfig(id="enriched"))
        nonempty = Gate(input=enriched, predicate=bool, _config=KnotConfig(id="has_orders"))
        totals = Reduce(
            of=nonempty, combine=add_to_region, initial={}, _config=KnotConfig(id="totals")
        )
        route = Branch(
            input=totals,
            selector=lambda totals: "review" if sum(totals.values()) > 500 else "auto",
            branches=("auto", "review"),
            _config=KnotConfig(id="route"),
        )
        decide(totals=route["auto"], verdict="approved", _config=KnotConfig(id="approve"))
        decide(totals=route["review"], verdict="to review", _config=KnotConfig(id="review"))
    return t


def print_run(name: str, result: RunResult) -> None:
    decision = result.outputs.get("approve") or result.outputs.get("review")
    print(f"\n== {name}: {result.status.value} | {result.outputs['totals']} | {decision}")
    print(f"{'knot':<18}{'outcome':<10}{'ms':>7}  output hash")
    for rec in result.lineage:
        short = rec.output_hash[7:19] if rec.output_hash else "-"
        print(f"{rec.knot_id:<18}{rec.outcome.value:<10}{rec.duration * 1000:>7.2f}  {short}")


async def main() -> None:
    t = build()
    names = {}
    for name, csv_text in (("monday", MONDAY), ("tuesday", TUESDAY)):
        result = await t.run(RunRequest(parameters={"orders_csv": csv_text}))
        names[result.run_id] = name
        print_run(name, result)

    # Which runs consumed order A-1001?  The same value has the same hash in every run.
    order = {"order_id": "A-1001", "customer": "alice", "region": "EU"}
    order_hash = content_hash({**order, "qty": 3, "unit_price": 12.5})
    consumers = await t.history.query_lineage_by_input_hash(order_hash)
    found = ", ".join(f"{names[r.run_id]}/{r.knot_id}" for r in consumers)
    print(f"\norder A-1001 was consumed by: {found}")


if __name__ == "__main__":
    asyncio.run(main())
