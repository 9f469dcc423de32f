"""The built-in node shapes: Source, Sink, Map, ZipMap, DictMap, Reduce, Aggregator,
Gate and Branch.

Run it with ``python examples/node_taxonomy.py``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pirn_like import (
    Aggregator,
    Branch,
    DictMap,
    Gate,
    KnotConfig,
    Map,
    Reduce,
    Sink,
    Source,
    Tapestry,
    ZipMap,
    knot,
)

# --- the building blocks -------------------------------------------------------------


class RecordIds(Source):
    """A Source takes constants only and brings data in from outside."""

    async def process(self, count: int, **_: Any) -> list[int]:
        return list(range(1, count + 1))


@knot
async def enrich_record(record_id: int) -> int:
    return record_id * 10


@knot
async def incoming_message() -> dict[str, str]:
    return {"type": "tool", "body": "lookup weather"}


@knot
async def handle_tool(payload: dict[str, str]) -> str:
    return f"running tool: {payload['body']}"


@knot
async def handle_resp(payload: dict[str, str]) -> str:
    return f"replying: {payload['body']}"


@knot
async def quantities() -> list[int]:
    return [3, 1, 2]


@knot
async def unit_prices() -> list[float]:
    return [2.5, 10.0, 4.0]


@knot
async def line_total(qty: int, price: float) -> float:
    return qty * price


@knot
async def stock() -> dict[str, int]:
    return {"apples": 4, "pears": 0}


@knot
async def stock_line(name: str, count: int) -> str:
    return f"{name}: {count}"


PUBLISHED: list[object] = []


class Publish(Sink):
    """A Sink is a terminal consumer; by convention it returns None."""

    async def process(self, value: Any, **_: Any) -> None:
        PUBLISHED.append(value)


async def main() -> None:
    with Tapestry() as t:
        record_ids = RecordIds(count=3, _config=KnotConfig(id="record_ids"))

        # Map an inner knot over a collection-producing parent.
        users = Map(
            over=record_ids,
            each=enrich_record,
            bind="record_id",
            _config=KnotConfig(id="users"),
        )

        # Reduce a list to one value: whole-list form, and pairwise form with initial=.
        total = Reduce(of=users, combine=sum, _config=KnotConfig(id="total"))
        Reduce(
            of=users,
            combine=lambda acc, u: [*acc, u // 10],
            initial=[],
            _config=KnotConfig(id="ids"),
        )

        # Branch on a selector: the arm not chosen is skipped, and so are its consumers.
        msg = incoming_message(_config=KnotConfig(id="msg"))
        b = Branch(
            input=msg,
            selector=lambda m: m["type"],
            branches=("tool", "response"),
            _config=KnotConfig(id="route"),
        )
        handle_tool(payload=b["tool"], _config=KnotConfig(id="t"))
        handle_resp(payload=b["response"], _config=KnotConfig(id="r"))

        # ZipMap runs the inner knot over several lists in lock-step.
        lines = ZipMap(
            over={
                "qty": quantities(_config=KnotConfig(id="qty")),
                "price": unit_prices(_config=KnotConfig(id="price")),
            },
            each=line_total,
            _config=KnotConfig(id="lines"),
        )

        # DictMap runs it once per value of a dict (key_bind also passes the key).
        DictMap(
            over=stock(_config=KnotConfig(id="stock")),
            each=stock_line,
            bind="count",
            key_bind="name",
            _config=KnotConfig(id="stock_lines"),
        )

        # An Aggregator combines several parents with one callable.
        summary = Aggregator(
            users_total=total,
            order_total=lines,
            combine=lambda users_total, order_total: {
                "users": users_total,
                "order": sum(order_total),
            },
            _config=KnotConfig(id="summary"),
        )

        # A Gate passes its input through, or skips everything downstream.
        big = Gate(
            input=summary, predicate=lambda s: s["order"] > 100, _config=KnotConfig(id="big")
        )
        Publish(value=summary, _config=KnotConfig(id="publish"))
        Publish(value=big, _config=KnotConfig(id="publish_big"))

    result = await t.run()
    for knot_id, value in result.outputs.items():
        print(f"{knot_id:<12} {value}")
    print("map items:", [r.knot_id for r in result.lineage if r.knot_id.startswith("users[")])
    for knot_id in ("route[response]", "r", "big", "publish_big"):
        rec = result.lineage_for(knot_id)
        print(f"skipped {knot_id:<16} {rec.skip_reason.value if rec.skip_reason else '?'}")
    print("published:", PUBLISHED)
    print("succeeded:", result.succeeded)


if __name__ == "__main__":
    asyncio.run(main())
