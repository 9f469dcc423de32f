"""The baseline: plain asyncio, one task per node awaiting its parents' tasks.

Build records each node's body, input names and parent indices; run creates every task
(in build order, which is topological) and awaits the terminals. No lineage, hashing,
error policy or bookkeeping: the floor a DAG framework's overhead is measured from.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

from workloads import Body, Workload

__all__ = ["AsyncioImplementation"]


@dataclass(slots=True)
class AsyncioGraph:
    """Node specs in build order; also the ``Builder`` the workload wires through."""

    ids: list[str] = field(default_factory=list[str])
    specs: list[tuple[Body, tuple[str, ...], tuple[int, ...]]] = field(
        default_factory=list[tuple[Body, tuple[str, ...], tuple[int, ...]]]
    )
    consumed: list[bool] = field(default_factory=list[bool])

    def node(self, node_id: str, body: Body, **parents: int) -> int:
        return self.aggregate(node_id, body, parents)

    def aggregate(self, node_id: str, combine: Body, parents: Mapping[str, int]) -> int:
        index = len(self.specs)
        self.ids.append(node_id)
        self.specs.append((combine, tuple(parents), tuple(parents.values())))
        self.consumed.append(False)
        for p in parents.values():
            self.consumed[p] = True
        return index

    @property
    def terminals(self) -> list[int]:
        return [i for i, used in enumerate(self.consumed) if not used]


async def _node(body: Body, names: tuple[str, ...], parents: list[asyncio.Task[int]]) -> int:
    values = [await p for p in parents]
    return await body(**dict(zip(names, values, strict=True)))


class AsyncioImplementation:
    name = "asyncio"

    def build(self, workload: Workload) -> AsyncioGraph:
        graph = AsyncioGraph()
        workload.wire(graph)
        return graph

    async def run(self, graph: AsyncioGraph) -> dict[str, int]:
        tasks: list[asyncio.Task[int]] = []
        for body, names, parents in graph.specs:
            tasks.append(asyncio.create_task(_node(body, names, [tasks[p] for p in parents])))
        terminals = graph.terminals
        values = await asyncio.gather(*(tasks[i] for i in terminals))
        return {graph.ids[i]: v for i, v in zip(terminals, values, strict=True)}

    async def check(self, workload: Workload, graph: AsyncioGraph, outputs: dict[str, int]) -> int:
        """Assert the terminals' values; returns the node count (no lineage here)."""
        if outputs != dict(workload.expected):
            raise AssertionError(f"asyncio: wrong outputs for {workload.name}")
        return len(graph.specs)
