"""What pirn_like adds on top of a distributed engine, and what processes buy.

    PYTHONPATH=bench python bench/dispatchers.py            # writes the "Dispatchers" section
    PYTHONPATH=bench python bench/dispatchers.py --quick    # one repeat, fewer knots, no doc

For each engine (a local process pool, Dask, Ray) the same graphs run twice in one
invocation: as a pirn_like tapestry on that engine's dispatcher, and written against the
engine directly (anyio.to_process tasks, ``dask.delayed`` + ``compute``, ``ray.remote``
+ ``await``). The ratio divides the first by the second. Graphs: a fan-out of small
knots (a source, N mappers, a sum), a chain of small knots, and a fan-out of 50 ms
CPU-bound knots. Finally the CPU-bound fan-out on ``ProcessDispatcher(2)`` against
``ThreadDispatcher(1)``: what two processes buy on two cores.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import anyio.to_process
import remote_workloads as w
from measure import write_section

from pirn_like import KnotConfig, RunRequest, Tapestry, ThreadDispatcher, knot

BENCH = Path(__file__).resolve().parent
DOC = BENCH.parent / "docs" / "performance.md"
START, END = "<!-- dispatchers:start -->", "<!-- dispatchers:end -->"
OVERHEAD_TARGET = 1.5
SPEEDUP_TARGET = 1.7

one, inc, burn, gather = knot(w.one), knot(w.inc), knot(w.burn), knot(w.gather)


@dataclass(frozen=True, slots=True)
class Shape:
    name: str
    kind: str  # "fan", "chain" or "cpu"
    n: int


def tapestry(shape: Shape, dispatcher: Any) -> Tapestry:
    t = Tapestry(dispatcher=dispatcher)
    with t:
        if shape.kind == "chain":
            prev = one(_config=KnotConfig(id="k0"))
            for i in range(1, shape.n):
                prev = inc(x=prev, _config=KnotConfig(id=f"k{i}"))
        else:
            body = burn if shape.kind == "cpu" else inc
            src = one(_config=KnotConfig(id="src"))
            mapped = {f"m{i}": body(x=src, _config=KnotConfig(id=f"m{i}")) for i in range(shape.n)}
            gather(**mapped, _config=KnotConfig(id="total"))
    return t


def expected(shape: Shape) -> int:
    return shape.n if shape.kind == "chain" else 2 * shape.n


async def best(run: Callable[[], Awaitable[int]], shape: Shape, repeats: int) -> float:
    fastest = float("inf")
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        value = await run()
        fastest = min(fastest, time.perf_counter() - start)
        assert value == expected(shape), (shape, value)
    return fastest


def via_pirn_like(shape: Shape, dispatcher: Any) -> Callable[[], Awaitable[int]]:
    t = tapestry(shape, dispatcher)
    terminal = f"k{shape.n - 1}" if shape.kind == "chain" else "total"

    async def run() -> int:
        result = await t.run(RunRequest())
        assert result.succeeded, result.exceptions[:2]
        return result.outputs[terminal]

    return run


# -- the engines used directly ------------------------------------------------------


def via_processes(shape: Shape, workers: int) -> Callable[[], Awaitable[int]]:
    limiter = anyio.CapacityLimiter(workers)

    async def call(fn: Callable[..., int], *args: int) -> int:
        return await anyio.to_process.run_sync(fn, *args, limiter=limiter)

    async def run() -> int:
        if shape.kind == "chain":
            value = await call(w.one)
            for _ in range(1, shape.n):
                value = await call(w.inc, value)
            return value
        src = await call(w.one)
        body = w.burn if shape.kind == "cpu" else w.inc
        results: list[int] = [0] * shape.n

        async def one_mapper(i: int) -> None:
            results[i] = await call(body, src)

        async with anyio.create_task_group() as tg:
            for i in range(shape.n):
                tg.start_soon(one_mapper, i)
        return await call(w.total, *results)

    return run


def via_dask(shape: Shape, client: Any) -> Callable[[], Awaitable[int]]:
    import dask

    def graph() -> Any:
        if shape.kind == "chain":
            value = dask.delayed(w.one, pure=False)()
            for _ in range(1, shape.n):
                value = dask.delayed(w.inc, pure=False)(value)
            return value
        src = dask.delayed(w.one, pure=False)()
        body = w.burn if shape.kind == "cpu" else w.inc
        return dask.delayed(w.total, pure=False)(
            *(dask.delayed(body, pure=False)(src) for _ in range(shape.n))
        )

    async def run() -> int:
        return await client.compute(graph())

    return run


def via_ray(shape: Shape) -> Callable[[], Awaitable[int]]:
    import ray

    r_one, r_inc, r_burn, r_total = (ray.remote(f) for f in (w.one, w.inc, w.burn, w.total))

    async def run() -> int:
        if shape.kind == "chain":
            ref = r_one.remote()
            for _ in range(1, shape.n):
                ref = r_inc.remote(ref)
            return await ref
        src = r_one.remote()
        body = r_burn if shape.kind == "cpu" else r_inc
        return await r_total.remote(*(body.remote(src) for _ in range(shape.n)))

    return run


# -- the run -------------------------------------------------------------------------


async def main(quick: bool) -> None:
    import distributed
    import ray

    from pirn_like import DaskDispatcher, ProcessDispatcher, RayDispatcher

    repeats = 1 if quick else 3
    shapes = [
        Shape("fan-out 1,000 small", "fan", 200 if quick else 1000),
        Shape("chain 200 small", "chain", 50 if quick else 200),
        Shape("fan-out 200 of 50 ms CPU", "cpu", 40 if quick else 200),
    ]
    rows: list[tuple[str, str, float, float]] = []
    # Workers import the knot bodies by name.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(BENCH), os.environ.get("PYTHONPATH")])
    )

    async def compare(engine: str, dispatcher: Any, direct: Callable[[Shape], Any]) -> None:
        async with dispatcher:
            for shape in shapes:
                ours = via_pirn_like(shape, dispatcher)
                theirs = direct(shape)
                await ours()  # warm-up: worker processes started, code imported
                await theirs()
                mine = await best(ours, shape, repeats)
                base = await best(theirs, shape, repeats)
                rows.append((engine, shape.name, mine, base))
                print(
                    f"{engine:>8} {shape.name:>26}: pirn_like {mine:7.3f} s, "
                    f"direct {base:7.3f} s, {mine / base:5.2f}x",
                    flush=True,
                )

    await compare("process", ProcessDispatcher(max_workers=2), partial(via_processes, workers=2))
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    async with distributed.Client(cluster.scheduler_address, asynchronous=True) as client:
        await compare("dask", DaskDispatcher(client=client), partial(via_dask, client=client))
    cluster.close()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        await compare("ray", RayDispatcher(), via_ray)
    finally:
        ray.shutdown()

    cpu = shapes[2]
    async with ProcessDispatcher(max_workers=2) as processes:
        run_processes = via_pirn_like(cpu, processes)
        await run_processes()
        two = await best(run_processes, cpu, repeats)
    one_thread = await best(via_pirn_like(cpu, ThreadDispatcher(max_workers=1)), cpu, repeats)
    print(
        f"CPU fan-out: 2 processes {two:.2f} s, 1 thread {one_thread:.2f} s: "
        f"{one_thread / two:.2f}x faster",
        flush=True,
    )
    if not quick:
        _write(rows, cpu.name, two, one_thread)


def _write(rows: list[tuple[str, str, float, float]], cpu: str, two: float, one: float) -> None:
    worst = max(mine / base for _, _, mine, base in rows)
    lines = [
        START,
        "## Dispatchers",
        "",
        "`PYTHONPATH=bench python bench/dispatchers.py`: each graph as a pirn_like tapestry",
        "on the engine's dispatcher against the same graph written for the engine directly",
        "(anyio.to_process tasks; `dask.delayed` + `compute` on a 2-worker LocalCluster;",
        "`ray.remote` on `ray.init(num_cpus=2)`), best of 3 after a warm-up run. pirn_like",
        "adds lineage, hashing and the safe value encoding to every knot.",
        "",
        "| engine | graph | pirn_like | engine directly | ratio |",
        "|---|---|---:|---:|---:|",
        *(
            f"| {engine} | {shape} | {mine:.3f} s | {base:.3f} s | {mine / base:.2f}x |"
            for engine, shape, mine, base in rows
        ),
        "",
        f"Target: pirn_like at most {OVERHEAD_TARGET}x the engine's own cost; worst ratio "
        f"{worst:.2f}x ({'met' if worst <= OVERHEAD_TARGET else 'missed'}).",
        f"{cpu} on `ProcessDispatcher(max_workers=2)`: {two:.2f} s; on "
        f"`ThreadDispatcher(max_workers=1)`: {one:.2f} s, {one / two:.2f}x faster "
        f"(target ≥ {SPEEDUP_TARGET}x: {'met' if one / two >= SPEEDUP_TARGET else 'missed'}).",
        END,
    ]
    write_section(DOC, START, END, lines)


if __name__ == "__main__":
    sys.path.insert(0, str(BENCH))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    anyio.run(main, parser.parse_args().quick)
