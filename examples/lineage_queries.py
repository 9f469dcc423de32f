"""Lineage records, cross-run queries, run history, and scrubbing values.

Run it with ``python examples/lineage_queries.py``.
"""

from __future__ import annotations

import asyncio

from pirn_like import (
    InMemoryDataStore,
    KnotConfig,
    Parameter,
    RunRequest,
    RunStatus,
    Tapestry,
    content_hash,
    knot,
)


@knot
async def double(x: int) -> int:
    return x * 2


@knot
async def add(a: int, b: int) -> int:
    return a + b


def short(h: str | None) -> str:
    return "-" if h is None else h[7:19]


async def main() -> None:
    data = InMemoryDataStore()
    with Tapestry(data_store=data) as t:
        x = Parameter("x", int)
        d = double(x=x, _config=KnotConfig(id="d"))
        add(a=x, b=d, _config=KnotConfig(id="answer"))

    first = await t.run(RunRequest(parameters={"x": 5}, labels={"batch": "monday"}))
    second = await t.run(RunRequest(parameters={"x": 5}, labels={"batch": "tuesday"}))
    third = await t.run(RunRequest(parameters={"x": 6}))
    names = {first.run_id: "first", second.run_id: "second", third.run_id: "third"}

    # One record per knot execution.
    rec = first.lineage_for("answer")
    print("knot_id:", rec.knot_id, "| knot_class:", rec.knot_class)
    print("knot_config_hash:", short(rec.knot_config_hash))
    print("parent_knot_ids:", dict(rec.parent_knot_ids))
    print("parent_input_hashes:", {k: short(v) for k, v in rec.parent_input_hashes.items()})
    print("execution_hash:", short(rec.execution_hash), "| output_hash:", short(rec.output_hash))
    print("outcome:", rec.outcome.value, "| attempts:", rec.attempts, "| by:", rec.dispatcher)
    print("took under a second:", rec.duration < 1.0)

    # Hashes are content addresses: anyone can compute the hash of a value.
    assert rec.output_hash == content_hash(15)
    assert rec.parent_input_hashes["b"] == content_hash(10)

    history = t.history
    # Which executions produced 15?  (Same value, same hash, in any run.)
    producers = await history.query_lineage_by_output_hash(content_hash(15))
    print("produced 15:", [(names[r.run_id], r.knot_id) for r in producers])

    # Which executions consumed 10 as an input?
    consumers = await history.query_lineage_by_input_hash(content_hash(10))
    print("consumed 10:", [(names[r.run_id], r.knot_id) for r in consumers])

    # Everything knot 'd' ever did.
    for r in await history.query_lineage_by_knot_id("d"):
        print(f"d in {names[r.run_id]:<6} in={short(r.parent_input_hashes['x'])}", end=" ")
        print(f"out={short(r.output_hash)}")

    # Equal execution hashes mean the same work on the same inputs.
    same_work = first.lineage_for("d").execution_hash == second.lineage_for("d").execution_hash
    print("first and second did the same work for 'd':", same_work)

    # Run history.
    run = await history.get_run(first.run_id)
    assert run is not None
    print("first run:", run.status.value, run.labels, "knots:", run.knot_count)
    print("parameter hash of x:", short(run.parameter_hashes["x"]))
    recent = await history.list_runs(limit=2, status=RunStatus.SUCCEEDED)
    print("two most recent:", [names[r.run_id] for r in recent])
    print("records of the third run:", len(await history.get_lineage(third.run_id)))

    # The data store keeps the values by hash; scrub one and its lineage stays.
    out = rec.output_hash
    assert out is not None
    print("kept value:", await data.get(out))
    await data.delete(out)
    try:
        await data.get(out)
    except KeyError:
        print("value scrubbed:", not await data.contains(out))
    still = await history.query_lineage_by_output_hash(out)
    print("lineage still knows who produced it:", [(names[r.run_id], r.knot_id) for r in still])


if __name__ == "__main__":
    asyncio.run(main())
