"""What pirn_like adds on top of a distributed engine, and what processes buy.

    PYTHONPATH=bench python bench/dispatchers.py            # writes the "Dispatchers" section
    PYTHONPATH=bench python bench/dispatchers.py --quick    # one repeat, fewer knots, no doc

For each engine (a local process pool, Dask, Ray, Celery) the same graphs run twice in
one invocation: as a pirn_like tapestry on that engine's dispatcher, and written against
the engine directly (``ProcessPoolExecutor`` tasks, ``dask.delayed`` + ``compute``,
``ray.remote`` + ``await``, Celery ``chain`` / ``group``). The ratio divides the first by
the second. Graphs: a fan-out of small knots (a source, N mappers, a sum), a chain of
small knots, and a fan-out of 50 ms CPU-bound knots. The process pool is also timed
against ``anyio.to_process``, the bare pipe ProcessDispatcher is built on: the floor of
any process pool. Finally the CPU-bound fan-out on ``ProcessDispatcher(2)`` against
``ThreadDispatcher(1)``: what two processes buy on two cores.

Dask and Celery run on servers this script starts (a LocalCluster; a ValKey server and
a ``celery worker`` with two prefork processes, via the tests' fixtures' helpers).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
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
TESTS = BENCH.parent / "tests"
DOC = BENCH.parent / "docs" / "performance.md"
START, END = "<!-- dispatchers:start -->", "<!-- dispatchers:end -->"
OVERHEAD_TARGET = 1.5
SPEEDUP_TARGET = 1.7
FLOOR = "process (pipe)"
"""The rows against the bare pipe: shown for what they teach, not held to the target."""
CELERY_DEADLINE = 600.0

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
    """The graph on anyio.to_process: one pipe round trip per knot, nothing else."""
    limiter = anyio.CapacityLimiter(workers)

    async def call(fn: Callable[..., int], *args: int) -> int:
        return await anyio.to_process.run_sync(fn, *args, limiter=limiter)

    return via_calls(shape, call)


def via_process_pool(shape: Shape, pool: ProcessPoolExecutor) -> Callable[[], Awaitable[int]]:
    """The graph on the standard library's process pool, awaited from asyncio."""

    async def call(fn: Callable[..., int], *args: int) -> int:
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)

    return via_calls(shape, call)


def via_calls(shape: Shape, call: Callable[..., Awaitable[int]]) -> Callable[[], Awaitable[int]]:
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


def via_celery(shape: Shape, app: Any) -> Callable[[], Awaitable[int]]:
    import celery

    def task(name: str) -> Any:
        return app.signature(f"bench.{name}")

    def blocking() -> int:
        if shape.kind == "chain":
            steps = [task("one"), *(task("inc") for _ in range(1, shape.n))]
            return celery.chain(*steps).apply_async().get(timeout=CELERY_DEADLINE)
        src = task("one").apply_async().get(timeout=CELERY_DEADLINE)
        body = "burn" if shape.kind == "cpu" else "inc"
        mapped = celery.group(task(body).clone(args=(src,)) for _ in range(shape.n))
        results = mapped.apply_async().get(timeout=CELERY_DEADLINE)
        return task("total").clone(args=tuple(results)).apply_async().get(timeout=CELERY_DEADLINE)

    async def run() -> int:
        return await anyio.to_thread.run_sync(blocking)

    return run


@contextmanager
def celery_app() -> Iterator[Any]:
    """A client app on a fresh ValKey server, with a two-process worker consuming it."""
    sys.path.insert(0, str(TESTS))
    from _celery_app import make_app
    from _fixtures_celery import run_celery_worker
    from _fixtures_valkey import running_valkey

    with (
        tempfile.TemporaryDirectory(prefix="pirn-like-bench-") as workdir,
        running_valkey(Path(workdir)) as (host, port),
    ):
        app = make_app(f"redis://{host}:{port}/0")
        try:
            with run_celery_worker(
                app, Path(workdir), queue="celery", app_module="celery_bench_app"
            ):
                yield app
        finally:
            app.close()


# -- the run -------------------------------------------------------------------------


async def main(quick: bool) -> None:
    import distributed
    import ray

    from pirn_like import CeleryDispatcher, DaskDispatcher, ProcessDispatcher, RayDispatcher

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

    with ProcessPoolExecutor(max_workers=2) as pool:
        await compare(
            "process", ProcessDispatcher(max_workers=2), partial(via_process_pool, pool=pool)
        )
    await compare(FLOOR, ProcessDispatcher(max_workers=2), partial(via_processes, workers=2))
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    # The dispatcher opens its own client, as in the seed's DaskDispatcher(scheduler=...).
    async with distributed.Client(cluster.scheduler_address, asynchronous=True) as client:
        dispatcher = DaskDispatcher(cluster.scheduler_address)
        await compare("dask", dispatcher, partial(via_dask, client=client))
    cluster.close()
    with celery_app() as app:
        await compare("celery", CeleryDispatcher(app), partial(via_celery, app=app))
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
    worst = max(mine / base for engine, _, mine, base in rows if engine != FLOOR)
    lines = [
        START,
        "## Dispatchers",
        "",
        "`PYTHONPATH=bench python bench/dispatchers.py`: each graph as a pirn_like tapestry",
        "on the engine's dispatcher against the same graph written for the engine directly",
        "(`ProcessPoolExecutor(2)` tasks awaited from asyncio; `dask.delayed` + `compute` on",
        "a 2-worker LocalCluster; `ray.remote` on `ray.init(num_cpus=2)`; Celery `chain` /",
        "`group` on a 2-process prefork worker over ValKey), best of 3 after a warm-up run.",
        "pirn_like adds lineage, hashing and the safe value encoding to every knot. The",
        f"`{FLOOR}` rows time the same ProcessDispatcher against `anyio.to_process`, the",
        "bare pipe it is built on: no process pool does less per task, so they show what",
        "one knot costs over a pipe round trip, not an engine's own cost.",
        "",
        "| engine | graph | pirn_like | engine directly | ratio |",
        "|---|---|---:|---:|---:|",
        *(
            f"| {engine} | {shape} | {mine:.3f} s | {base:.3f} s | {mine / base:.2f}x |"
            for engine, shape, mine, base in rows
        ),
        "",
        f"Target: pirn_like at most {OVERHEAD_TARGET}x the engine's own cost; worst ratio "
        f"{worst:.2f}x ({'met' if worst <= OVERHEAD_TARGET else 'missed'}; the `{FLOOR}` rows "
        "aside).",
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
