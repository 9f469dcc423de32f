"""pirn_like and pirn-core: both expose the seed API, so one adapter drives either.

Build = constructing the knots inside ``with Tapestry() as t:``; run =
``await t.run(RunRequest())``. Both use their default ``Tapestry()``, which records
lineage into an in-memory history. ``validate_io=False`` is pirn_like's default and is
set explicitly so pirn-core (whose default is ``True``) does the same work.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from workloads import BODIES, Body, Workload

__all__ = ["FRAMEWORKS", "KnotImplementation"]

FRAMEWORKS: dict[str, tuple[str, str]] = {
    # name -> (module, module holding Aggregator)
    "pirn_like": ("pirn_like", "pirn_like"),
    "pirn": ("pirn", "pirn.nodes.aggregator"),
}


@dataclass(slots=True)
class KnotBuilder:
    """The ``Builder`` the workload wires through: one knot per node."""

    impl: KnotImplementation

    def node(self, node_id: str, body: Body, **parents: Any) -> Any:
        return self.impl.knot_classes[body](**parents, _config=self.impl.config(node_id))

    def aggregate(self, node_id: str, combine: Body, parents: Mapping[str, Any]) -> Any:
        return self.impl.aggregator(combine=combine, _config=self.impl.config(node_id), **parents)


class KnotImplementation:
    def __init__(self, name: str) -> None:
        module_name, aggregator_module = FRAMEWORKS[name]
        self.name = name
        self.module = importlib.import_module(module_name)
        self.version: str = getattr(self.module, "__version__", "?")
        self.aggregator: Any = importlib.import_module(aggregator_module).Aggregator
        self.knot_classes: dict[Body, Any] = {body: self.module.knot(body) for body in BODIES}

    def config(self, node_id: str) -> Any:
        return self.module.KnotConfig(id=node_id, validate_io=False)

    def build(self, workload: Workload) -> Any:
        with self.module.Tapestry() as tapestry:
            workload.wire(KnotBuilder(self))
        return tapestry

    async def run(self, tapestry: Any) -> Any:
        return await tapestry.run(self.module.RunRequest())

    async def check(self, workload: Workload, tapestry: Any, result: Any) -> int:
        """Assert success, the terminals' values, one lineage record per knot, and that
        the history holds this run's lineage. Returns the number of lineage records.
        """
        where = f"{self.name} {workload.name}"
        if not result.succeeded:
            raise AssertionError(f"{where}: run did not succeed: {result.exceptions[:3]}")
        got = {k: result.outputs.get(k) for k in workload.expected}
        if got != dict(workload.expected):
            wrong = {k: v for k, v in got.items() if v != workload.expected[k]}
            raise AssertionError(f"{where}: wrong outputs, e.g. {list(wrong.items())[:3]}")
        lineage = len(result.lineage)
        if lineage != workload.nodes:
            raise AssertionError(f"{where}: {lineage} lineage records for {workload.nodes} knots")
        terminal = next(iter(workload.expected))
        stored = await tapestry.history.query_lineage_by_knot_id(terminal)
        if not any(rec.run_id == result.run_id for rec in stored):
            raise AssertionError(f"{where}: the history has no lineage of {terminal!r}")
        return lineage
