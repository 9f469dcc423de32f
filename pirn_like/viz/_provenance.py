"""Provenance views: the graph ``RunHistory.provenance(hash)`` returns, drawn.

The searched value sits in the middle column; what it was made from lies to the left
(one column per hop upstream), what was made from it to the right. Values are pills
labelled by short hash; executions are boxes labelled by knot and run, coloured by
outcome. Each node may link somewhere (``link``), so a page can navigate the graph
without a script.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING, Any

from pirn_like.core._records import KnotLineage
from pirn_like.viz._layout import NODE_HEIGHT, NODE_WIDTH, grid
from pirn_like.viz._mermaid import mermaid_label
from pirn_like.viz._svg import COLOURS, edge, svg_open

if TYPE_CHECKING:
    import networkx as nx

__all__ = [
    "MAX_PROVENANCE_NODES",
    "ProvenanceNode",
    "mermaid_for_provenance",
    "provenance_nodes",
    "svg_for_provenance",
]

MAX_PROVENANCE_NODES = 300
"""Nodes drawn at most, nearest the searched value first."""
_LABEL_CHARS = 22


@dataclass(frozen=True, slots=True, kw_only=True)
class ProvenanceNode:
    """One node as drawn: a value (``record`` None) or an execution."""

    id: str
    """The graph's node: a content hash, or ``exec:<run id>/<knot id>``."""
    column: int
    """Hops from the searched value: negative upstream, positive downstream."""
    record: KnotLineage | None

    @property
    def kind(self) -> str:
        return "value" if self.record is None else "execution"

    @property
    def label(self) -> str:
        if self.record is not None:
            return self.record.knot_id
        algorithm, _, digest = self.id.rpartition(":")
        return f"{algorithm}:{digest[:10]}…" if len(digest) > 14 else self.id

    @property
    def detail(self) -> str:
        if self.record is not None:
            return f"run {self.record.run_id}"
        return "value"

    @property
    def outcome(self) -> str:
        return self.record.outcome.value if self.record is not None else "none"

    def tooltip(self) -> str:
        rec = self.record
        if rec is None:
            return f"value {self.id}"
        lines = [f"knot: {rec.knot_id}", f"run: {rec.run_id}", f"outcome: {rec.outcome.value}"]
        lines.append(f"class: {rec.knot_class}")
        lines.append(f"started: {rec.started_at.isoformat(timespec='seconds')}")
        return "\n".join(lines)


def provenance_nodes(
    graph: nx.DiGraph[str], root: str, *, limit: int = MAX_PROVENANCE_NODES
) -> tuple[list[ProvenanceNode], bool]:
    """The nodes nearest ``root`` (at most ``limit``), each in its column, and whether
    some were left out. Upstream is searched along incoming edges, downstream along
    outgoing ones; a node on both sides stays where it was first reached, downstream
    first (a knot that passed the value on unchanged reads as its consumer)."""
    column: dict[str, int] = {root: 0}
    queue: deque[tuple[str, int]] = deque([(root, 1), (root, -1)])
    while queue and len(column) < limit:
        node, step = queue.popleft()
        onward = graph.predecessors(node) if step < 0 else graph.successors(node)
        for nxt in sorted(onward):
            if nxt in column:
                continue
            column[nxt] = column[node] + step
            queue.append((nxt, step))
            if len(column) == limit:
                break
    truncated = len(column) < graph.number_of_nodes()
    nodes = [
        ProvenanceNode(id=n, column=c, record=_record(graph.nodes[n])) for n, c in column.items()
    ]
    return nodes, truncated


def _record(attributes: dict[str, Any]) -> KnotLineage | None:
    record = attributes.get("record")
    return record if isinstance(record, KnotLineage) else None


def svg_for_provenance(
    graph: nx.DiGraph[str],
    root: str,
    *,
    link: Callable[[ProvenanceNode], str | None] | None = None,
    limit: int = MAX_PROVENANCE_NODES,
) -> str:
    """``graph`` (from ``RunHistory.provenance(root)``) as an inline SVG, upstream to
    the left of ``root`` and downstream to the right. ``link(node)`` gives each node's
    href (None: not a link)."""
    nodes, _ = provenance_nodes(graph, root, limit=limit)
    columns: dict[int, list[str]] = {}
    for node in nodes:
        columns.setdefault(node.column, []).append(node.id)
    layout = grid(columns)
    pos = layout.positions
    index = {node.id: i for i, node in enumerate(nodes)}
    parts = [svg_open("pirn-provenance", layout.width, layout.height + NODE_HEIGHT)]
    for source, target in graph.edges:
        if source in index and target in index:
            attributes = f'data-from="{index[source]}" data-to="{index[target]}"'
            parts.append(edge(pos[source], pos[target], attributes))
    for i, node in enumerate(nodes):
        parts.append(_node_svg(i, node, pos[node.id], root, link))
    parts.append("</svg>")
    return "".join(parts)


def _node_svg(
    i: int,
    node: ProvenanceNode,
    at: tuple[int, int],
    root: str,
    link: Callable[[ProvenanceNode], str | None] | None,
) -> str:
    fill, stroke = COLOURS[node.outcome]
    width = 3 if node.id == root else 2 if node.outcome == "err" else 1.3
    radius = NODE_HEIGHT // 2 if node.record is None else 6
    label = node.label if len(node.label) <= _LABEL_CHARS else node.label[:21] + "…"
    detail = node.detail if len(node.detail) <= _LABEL_CHARS + 6 else node.detail[:27] + "…"
    body = (
        f"<title>{escape(node.tooltip())}</title>"
        f'<rect width="{NODE_WIDTH}" height="{NODE_HEIGHT}" rx="{radius}" fill="{fill}" '
        f'stroke="{stroke}" stroke-width="{width}"/>'
        f'<text x="12" y="18" font-weight="bold" fill="#222">{escape(label)}</text>'
        f'<text x="12" y="34" fill="#555" font-size="10">{escape(detail)}</text>'
    )
    group = (
        f'<g class="prov-node" data-node="{i}" data-kind="{node.kind}" '
        f'data-outcome="{node.outcome}" data-column="{node.column}" '
        f'data-id="{escape(node.id, quote=True)}" transform="translate({at[0]},{at[1]})">'
        f"{body}</g>"
    )
    href = link(node) if link is not None else None
    if href is None:
        return group
    return f'<a class="prov-link" href="{escape(href, quote=True)}">{group}</a>'


def mermaid_for_provenance(
    graph: nx.DiGraph[str], root: str, *, limit: int = MAX_PROVENANCE_NODES
) -> str:
    """``graph`` as a Mermaid ``flowchart LR``: values as rounded nodes, executions as
    boxes labelled ``knot · run``; the searched value is marked."""
    nodes, _ = provenance_nodes(graph, root, limit=limit)
    names = {node.id: f"n{i}" for i, node in enumerate(nodes)}
    lines = ["flowchart LR"]
    for node in nodes:
        if node.record is None:
            lines.append(f'    {names[node.id]}("{mermaid_label(node.label)}")')
        else:
            text = f"{node.label} · {node.detail}"
            lines.append(f'    {names[node.id]}["{mermaid_label(text)}"]')
    for source, target, data in graph.edges(data=True):
        if source in names and target in names:
            name = data.get("input")
            arrow = f'-->|"{mermaid_label(str(name))}"|' if name else "-->"
            lines.append(f"    {names[source]} {arrow} {names[target]}")
    lines.append("    classDef searched stroke-width:3px")
    lines.append(f"    class {names[root]} searched")
    return "\n".join(lines) + "\n"
