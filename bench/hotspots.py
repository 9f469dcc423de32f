"""Profile one phase of one workload with cProfile: where the per-knot time goes.

    python bench/hotspots.py "chain 1,000"                      # pirn_like, 1st run
    python bench/hotspots.py "fan-out 10,000" --phase build --top 30
    python bench/hotspots.py "fan-out 10,000" --impl pirn --sort cumulative

The phase is profiled after one unprofiled warm-up build and run, so one-off costs
(first pydantic validations, lazy imports) do not crowd the list. The time the cyclic
garbage collector spent during the phase is printed too: cProfile charges it to
whichever function happened to allocate when a collection started.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import pstats
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from child import Implementation, load
from workloads import WORKLOADS, Workload

T = TypeVar("T")


class GcTimer:
    """Collections per generation, and the seconds spent in them, while enabled."""

    def __init__(self) -> None:
        self.counts: Counter[int] = Counter()
        self.seconds = 0.0
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._start
            self.counts[info["generation"]] += 1

    def summary(self) -> str:
        gens = ", ".join(f"gen{g}: {n}" for g, n in sorted(self.counts.items())) or "none"
        return f"cyclic GC during the phase: {self.seconds * 1e3:.1f} ms ({gens})"


class Profiler:
    def __init__(self) -> None:
        self.profile = cProfile.Profile()
        self.gc = GcTimer()

    async def phase(self, step: Callable[[], Awaitable[T]]) -> T:
        gc.collect()
        gc.callbacks.append(self.gc)
        self.profile.enable()
        try:
            return await step()
        finally:
            self.profile.disable()
            gc.callbacks.remove(self.gc)


async def profile(impl: Implementation, workload: Workload, phase: str) -> Profiler:
    graph = impl.build(workload)
    await impl.check(workload, graph, await impl.run(graph))  # warm-up
    del graph
    profiler = Profiler()

    async def build() -> Any:
        return impl.build(workload)

    if phase == "build":
        await profiler.phase(build)
        return profiler
    graph = impl.build(workload)
    if phase == "run2":
        await impl.check(workload, graph, await impl.run(graph))
    result = await profiler.phase(lambda: impl.run(graph))
    await impl.check(workload, graph, result)
    return profiler


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("workload", choices=list(WORKLOADS))
    parser.add_argument("--impl", default="pirn_like", choices=["asyncio", "pirn_like", "pirn"])
    parser.add_argument("--phase", default="run1", choices=["build", "run1", "run2"])
    parser.add_argument("--sort", default="tottime", choices=["tottime", "cumulative"])
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--no-gc", action="store_true", help="disable the cyclic GC")
    args = parser.parse_args()
    if args.no_gc:
        gc.disable()
    workload = WORKLOADS[args.workload]
    profiler = asyncio.run(profile(load(args.impl), workload, args.phase))
    stats = pstats.Stats(profiler.profile)
    total: float = stats.total_tt  # type: ignore[attr-defined]
    print(
        f"{args.impl} {workload.name} {args.phase}: {total:.3f} s under cProfile "
        f"= {total / workload.nodes * 1e6:.1f} µs/knot (profiling inflates this)\n"
        f"{profiler.gc.summary()}\n"
    )
    stats.sort_stats(args.sort).print_stats(args.top)


if __name__ == "__main__":
    main()
