"""The benchmark workloads, written once for every implementation.

A workload wires a graph through a ``Builder``: ``node`` adds a node running one of the
shared bodies below, ``aggregate`` adds an N-parent aggregator. Each implementation
(plain asyncio, pirn_like, pirn-core) supplies its own builder, so all three build the
same graph and run the very same coroutine functions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

__all__ = ["BODIES", "WORKLOADS", "Body", "Builder", "Workload"]

H = TypeVar("H")

Body = Callable[..., Awaitable[int]]

SLEEP_SECONDS = 0.001


# -- the knot bodies: trivial on purpose, so the framework overhead dominates -----------


async def one() -> int:
    return 1


async def inc(x: int) -> int:
    return x + 1


async def nap(x: int) -> int:
    await asyncio.sleep(SLEEP_SECONDS)
    return x + 1


async def add3(a: int, b: int, c: int) -> int:
    return a + b + c


async def total(**inputs: int) -> int:
    return sum(inputs.values())


BODIES: tuple[Body, ...] = (one, inc, nap, add3)
"""The bodies knot frameworks wrap with ``@knot`` (``total`` is an aggregator's combine)."""


class Builder(Protocol[H]):
    """Adds nodes to a graph; ``H`` is the implementation's handle to a node."""

    def node(self, node_id: str, body: Body, **parents: H) -> H: ...

    def aggregate(self, node_id: str, combine: Body, parents: Mapping[str, H]) -> H: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Workload:
    """A named graph and the outputs its terminal nodes must produce."""

    name: str
    nodes: int
    wire: Callable[[Builder[Any]], None]
    expected: Mapping[str, int]
    """Terminal node id -> value: checked after every run, so a broken run fails loudly."""


# -- shapes -------------------------------------------------------------------------


def chain(n: int) -> Workload:
    def wire(b: Builder[H]) -> None:
        prev = b.node("k0", one)
        for i in range(1, n):
            prev = b.node(f"k{i}", inc, x=prev)

    return Workload(name=f"chain {n:,}", nodes=n, wire=wire, expected={f"k{n - 1}": n})


def fan_out(n: int, body: Body = inc, name: str | None = None) -> Workload:
    """A source, ``n`` mappers each consuming it, one aggregator consuming all mappers."""

    def wire(b: Builder[H]) -> None:
        source = b.node("source", one)
        mappers = {f"m{i}": b.node(f"m{i}", body, x=source) for i in range(n)}
        b.aggregate("total", total, mappers)

    name = name or f"fan-out {n:,}"
    return Workload(name=name, nodes=n + 2, wire=wire, expected={"total": 2 * n})


def layered(layers: int, width: int) -> Workload:
    """``layers`` layers of ``width``; node j takes nodes j, j+1, j+2 (mod width) above."""

    def wire(b: Builder[H]) -> None:
        prev = [b.node(f"l0_{j}", one) for j in range(width)]
        for layer in range(1, layers):
            prev = [
                b.node(
                    f"l{layer}_{j}",
                    add3,
                    a=prev[j],
                    b=prev[(j + 1) % width],
                    c=prev[(j + 2) % width],
                )
                for j in range(width)
            ]

    last = layers - 1
    return Workload(
        name=f"layered {layers * width:,}",
        nodes=layers * width,
        wire=wire,
        expected={f"l{last}_{j}": 3**last for j in range(width)},
    )


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        chain(1_000),
        fan_out(1_000),
        fan_out(10_000),
        layered(20, 100),
        fan_out(1_000, nap, "1,000 sleeping 1 ms"),
        fan_out(100_000),
    )
}
BIG = "fan-out 100,000"
"""Also reported in seconds with its peak RSS; skipped by ``--quick``."""
