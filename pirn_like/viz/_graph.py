"""The graph a view draws: knots, their wiring and (for a run) how each ended.

Built from a tapestry's plan (structure only) or from a run's lineage alone, so a
run loaded back from history draws the same as one that just finished.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from pirn_like.core._plan import RunPlan
from pirn_like.core._records import KnotLineage, RunResult
from pirn_like.core._results import ExceptionRecord

__all__ = ["Graph", "HasPlan", "KnotView", "graph_of_plan", "graph_of_run"]


class HasPlan(Protocol):
    """Anything that can produce a run plan: a ``Tapestry``."""

    def plan(self) -> RunPlan: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class KnotView:
    """One knot as drawn. ``outcome`` is None when drawing structure only, or when a
    run's lineage names a parent it holds no record of."""

    id: str
    knot_class: str
    parents: Mapping[str, str]
    """Input name -> parent knot id."""
    outcome: str | None = None
    lineage: KnotLineage | None = None
    error: ExceptionRecord | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Graph:
    """Knots in a topological order (parents before children)."""

    knots: tuple[KnotView, ...]

    def children(self) -> dict[str, list[str]]:
        """Each knot's children, by id."""
        out: dict[str, list[str]] = {k.id: [] for k in self.knots}
        for k in self.knots:
            for parent in dict.fromkeys(k.parents.values()):
                out[parent].append(k.id)
        return out


def graph_of_plan(tapestry: HasPlan) -> Graph:
    """The structure of ``tapestry``'s default plan."""
    plan = tapestry.plan()
    return Graph(
        knots=tuple(
            KnotView(id=n.knot.id, knot_class=n.knot_class, parents=dict(n.parent_ids))
            for n in plan.nodes
        )
    )


def graph_of_run(result: RunResult) -> Graph:
    """The run's graph, from its lineage: each knot's latest record (after a resume)."""
    latest: dict[str, KnotLineage] = {}
    for rec in result.lineage:
        latest.pop(rec.knot_id, None)  # re-insert: keep the order of the latest record
        latest[rec.knot_id] = rec
    errors = {e.id: e for e in result.exceptions}
    views: dict[str, KnotView] = {}
    for rec in latest.values():
        parents = {name: str(pid) for name, pid in rec.parent_knot_ids.items()}
        for pid in parents.values():
            if pid not in latest and pid not in views:
                # A parent the lineage does not hold (e.g. filtered out): draw it plainly.
                views[pid] = KnotView(id=pid, knot_class="", parents={})
        error = errors.get(rec.error_record_id) if rec.error_record_id else None
        views[rec.knot_id] = KnotView(
            id=rec.knot_id,
            knot_class=rec.knot_class,
            parents=parents,
            outcome=rec.outcome.value,
            lineage=rec,
            error=error,
        )
    return Graph(knots=_topological(list(views.values())))


def _topological(views: Sequence[KnotView]) -> tuple[KnotView, ...]:
    """``views`` with every parent before its children (records arrive in finishing
    order, which already is one for a plain run; a resume may reorder them)."""
    by_id = {v.id: v for v in views}
    done: set[str] = set()
    order: list[KnotView] = []
    for start in views:
        stack: list[tuple[KnotView, list[str]]] = [(start, list(start.parents.values()))]
        while stack:
            view, pending = stack[-1]
            if view.id in done:
                stack.pop()
                continue
            if pending:
                pid = pending.pop()
                parent = by_id.get(pid)
                if parent is not None and pid not in done and all(pid != s[0].id for s in stack):
                    stack.append((parent, list(parent.parents.values())))
                continue
            stack.pop()
            done.add(view.id)
            order.append(view)
    return tuple(order)
