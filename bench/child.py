"""Measure one implementation on one workload, in a process of its own.

``python bench/child.py IMPL WORKLOAD --repeats N --budget S`` prints one JSON object per
line: ``ready`` once the implementation is imported, a ``phase`` per timed phase
(``build``, ``run1``, ``run2``) as soon as it ends, ``repeat`` with the peak RSS so far
after each build and its two runs, and ``done``. The parent (``run.py``) caps how long
it waits for each line, so a measurement that hangs is reported as timed out. A wrong
result raises, so a broken run cannot look fast.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any, Protocol

from workloads import WORKLOADS, Workload

__all__ = ["Implementation", "load", "main"]

REPO_ROOT = Path(__file__).resolve().parent.parent


class Implementation(Protocol):
    name: str

    def build(self, workload: Workload, /) -> Any: ...

    async def run(self, graph: Any, /) -> Any: ...

    async def check(self, workload: Workload, graph: Any, result: Any, /) -> int: ...


def load(name: str) -> Implementation:
    """The implementation called ``name``; pirn_like comes from this source tree."""
    if name == "asyncio":
        from impl_asyncio import AsyncioImplementation

        return AsyncioImplementation()
    from impl_knots import KnotImplementation

    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(1, str(REPO_ROOT))
    return KnotImplementation(name)


def peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


async def _timed_run(impl: Implementation, workload: Workload, graph: Any, phase: str) -> int:
    gc.collect()
    t0 = time.perf_counter()
    result = await impl.run(graph)
    seconds = time.perf_counter() - t0
    records = await impl.check(workload, graph, result)
    emit(event="phase", phase=phase, seconds=seconds)
    return records


async def measure(impl: Implementation, workload: Workload, repeats: int, budget: float) -> int:
    """Build and run ``repeats`` times (fewer once ``budget`` seconds are spent)."""
    start = time.perf_counter()
    records = 0
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        graph = impl.build(workload)
        emit(event="phase", phase="build", seconds=time.perf_counter() - t0)
        records = await _timed_run(impl, workload, graph, "run1")
        records = await _timed_run(impl, workload, graph, "run2")
        del graph
        emit(event="repeat", peak_rss=peak_rss_bytes())
        if time.perf_counter() - start > budget:
            break
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("impl", choices=["asyncio", "pirn_like", "pirn"])
    parser.add_argument("workload", choices=list(WORKLOADS))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget", type=float, default=60.0)
    args = parser.parse_args()
    impl = load(args.impl)
    emit(event="ready", version=getattr(impl, "version", ""), rss_after_import=peak_rss_bytes())
    records = asyncio.run(measure(impl, WORKLOADS[args.workload], args.repeats, args.budget))
    emit(event="done", records=records)


if __name__ == "__main__":
    main()
