"""Longest-path layering: each knot one column right of its deepest parent."""

from __future__ import annotations

from dataclasses import dataclass

from pirn_like.viz._graph import Graph

__all__ = ["NODE_HEIGHT", "NODE_WIDTH", "Layout", "grid", "layered"]

NODE_WIDTH = 180
NODE_HEIGHT = 44
_GAP_X = 60
_GAP_Y = 20
_MARGIN = 16


@dataclass(frozen=True, slots=True, kw_only=True)
class Layout:
    """Top-left corner of each knot's box, by id, and the drawing's size."""

    positions: dict[str, tuple[int, int]]
    width: int
    height: int


def layered(graph: Graph) -> Layout:
    """Place knots in columns by longest path from a root; within a column, order by
    the mean row of their parents (one barycentre pass keeps most edges straight)."""
    layer: dict[str, int] = {}
    for k in graph.knots:  # topological order: parents already placed
        layer[k.id] = 1 + max((layer.get(p, -1) for p in k.parents.values()), default=-1)
    columns: dict[int, list[str]] = {}
    row: dict[str, float] = {}
    for k in graph.knots:
        col = columns.setdefault(layer[k.id], [])
        rows = [row[p] for p in k.parents.values() if p in row]
        row[k.id] = sum(rows) / len(rows) if rows else float(len(col))
        col.append(k.id)
    for ids in columns.values():
        ids.sort(key=lambda i: row[i])
    return grid(columns)


def grid(columns: dict[int, list[str]]) -> Layout:
    """Boxes in columns (keys: column numbers, any start; values: ids top to bottom)."""
    first = min(columns, default=0)
    positions: dict[str, tuple[int, int]] = {}
    for index, ids in sorted(columns.items()):
        for r, node_id in enumerate(ids):
            positions[node_id] = (
                _MARGIN + (index - first) * (NODE_WIDTH + _GAP_X),
                _MARGIN + r * (NODE_HEIGHT + _GAP_Y),
            )
    depth = max(columns, default=0) - first + 1
    tallest = max((len(ids) for ids in columns.values()), default=1)
    return Layout(
        positions=positions,
        width=2 * _MARGIN + depth * NODE_WIDTH + (depth - 1) * _GAP_X,
        height=2 * _MARGIN + tallest * NODE_HEIGHT + (tallest - 1) * _GAP_Y,
    )
