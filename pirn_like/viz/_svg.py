"""Inline SVG: the layered graph and the run's timeline (a Gantt of knot timings).

Every user string (knot ids, classes, hashes) is escaped before it reaches markup.
Colours are presentation attributes, so the SVG looks right without a stylesheet
(in a notebook); the HTML report's CSS only adds interaction states.
"""

from __future__ import annotations

from datetime import datetime
from html import escape

from pirn_like.viz._graph import Graph, KnotView
from pirn_like.viz._layout import NODE_HEIGHT, NODE_WIDTH, layered

__all__ = [
    "COLOURS",
    "edge",
    "graph_svg",
    "outcome_of",
    "svg_open",
    "timeline_svg",
    "tooltip",
]

# Outcome -> (fill, stroke); "none" is a knot drawn without a run.
COLOURS = {
    "ok": ("#d9f2e0", "#2e8b57"),
    "err": ("#f9d6d5", "#c0392b"),
    "skipped": ("#eeeeee", "#888888"),
    "cancelled": ("#fdf0d0", "#b7791f"),
    "none": ("#e8eef8", "#4a6fa5"),
}
_LABEL_CHARS = 22
_TIMELINE_WIDTH = 640
_ROW = 22
_NAME_WIDTH = 180


def outcome_of(knot: KnotView) -> str:
    """The knot's outcome key for styling and filtering."""
    return knot.outcome or "none"


def tooltip(knot: KnotView) -> str:
    """What hovering a knot shows: id, class, outcome, hashes and duration."""
    lines = [f"knot: {knot.id}"]
    if knot.knot_class:
        lines.append(f"class: {knot.knot_class}")
    if knot.outcome is not None:
        lines.append(f"outcome: {knot.outcome}")
    rec = knot.lineage
    if rec is not None:
        lines.append(f"config hash: {rec.knot_config_hash}")
        if rec.output_hash is not None:
            lines.append(f"output hash: {rec.output_hash}")
        lines.append(f"duration: {rec.duration * 1000:.1f} ms")
    if knot.error is not None:
        lines.append(f"error: {knot.error.type}: {knot.error.message}")
    return "\n".join(lines)


def svg_open(css_class: str, width: int, height: int) -> str:
    """An ``<svg>`` start tag of that size, with the arrow head its edges use."""
    return (
        f'<svg class="{css_class}" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" '
        'font-family="sans-serif" font-size="12">'
        '<defs><marker id="pirn-arrow" viewBox="0 0 10 10" refX="10" refY="5" '
        'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        '<path d="M0,0 L10,5 L0,10 z" fill="#666"/></marker></defs>'
    )


def edge(start: tuple[int, int], end: tuple[int, int], attributes: str) -> str:
    """An arrow from the box at ``start`` to the box at ``end`` (top-left corners):
    right side to left side, or looping below when ``end`` is not to the right."""
    (x1, y1), (x2, y2) = start, end
    sy, ey = y1 + NODE_HEIGHT // 2, y2 + NODE_HEIGHT // 2
    if x2 > x1:
        sx, ex = x1 + NODE_WIDTH, x2
        mid = (sx + ex) // 2
        d = f"M{sx},{sy} C{mid},{sy} {mid},{ey} {ex},{ey}"
    else:  # a value a knot passed on unchanged: from its box back to the value's
        sx, ex, low = x1 + NODE_WIDTH // 2, x2 + NODE_WIDTH // 2, max(y1, y2) + NODE_HEIGHT + 14
        d = f"M{sx},{y1 + NODE_HEIGHT} C{sx},{low} {ex},{low} {ex},{y2 + NODE_HEIGHT}"
    return (
        f'<path class="edge" {attributes} d="{d}" fill="none" stroke="#888" '
        'stroke-width="1.3" marker-end="url(#pirn-arrow)"/>'
    )


def graph_svg(graph: Graph) -> str:
    """The graph, left to right, in longest-path layers."""
    layout = layered(graph)
    pos = layout.positions
    parts = [svg_open("pirn-graph", layout.width, layout.height)]
    index = {k.id: i for i, k in enumerate(graph.knots)}
    for k in graph.knots:
        for parent in dict.fromkeys(k.parents.values()):
            parts.append(
                edge(pos[parent], pos[k.id], f'data-from="{index[parent]}" data-to="{index[k.id]}"')
            )
    for i, k in enumerate(graph.knots):
        x, y = pos[k.id]
        outcome = outcome_of(k)
        fill, stroke = COLOURS[outcome]
        dash = ' stroke-dasharray="5 3"' if outcome in ("skipped", "cancelled") else ""
        label = k.id if len(k.id) <= _LABEL_CHARS else k.id[: _LABEL_CHARS - 1] + "…"
        sub = outcome if k.outcome is not None else k.knot_class.rsplit(".", 1)[-1]
        parts.append(
            f'<g class="knot" data-knot="{i}" data-outcome="{outcome}" tabindex="0" '
            f'role="button" transform="translate({x},{y})">'
            f"<title>{escape(tooltip(k))}</title>"
            f'<rect width="{NODE_WIDTH}" height="{NODE_HEIGHT}" rx="6" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="{2 if outcome == "err" else 1.3}"{dash}/>'
            f'<text x="10" y="18" font-weight="bold" fill="#222">{escape(label)}</text>'
            f'<text x="10" y="34" fill="#555" font-size="10">{escape(sub[: _LABEL_CHARS + 6])}'
            "</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def timeline_svg(graph: Graph) -> str:
    """A Gantt of the run: one row per executed knot, bars at their start and length."""
    timed = [k for k in graph.knots if k.lineage is not None]
    timed.sort(key=lambda k: k.lineage.started_at if k.lineage else datetime.min)
    if not timed:
        return '<p class="empty">No knot timings recorded.</p>'
    start = min(k.lineage.started_at for k in timed if k.lineage)
    end = max(k.lineage.finished_at for k in timed if k.lineage)
    span = max((end - start).total_seconds(), 1e-6)
    scale = (_TIMELINE_WIDTH - _NAME_WIDTH - 70) / span
    height = _ROW * len(timed) + 24
    index = {k.id: i for i, k in enumerate(graph.knots)}
    parts = [
        f'<svg class="pirn-timeline" xmlns="http://www.w3.org/2000/svg" '
        f'width="{_TIMELINE_WIDTH}" height="{height}" font-family="sans-serif" font-size="11">'
    ]
    for row, k in enumerate(timed):
        rec = k.lineage
        assert rec is not None
        y = row * _ROW + 4
        x = _NAME_WIDTH + (rec.started_at - start).total_seconds() * scale
        width = max(rec.duration * scale, 2.0)
        fill, stroke = COLOURS[outcome_of(k)]
        name = k.id if len(k.id) <= _LABEL_CHARS else k.id[: _LABEL_CHARS - 1] + "…"
        parts.append(
            f'<g class="bar" data-knot="{index[k.id]}" data-outcome="{outcome_of(k)}">'
            f"<title>{escape(tooltip(k))}</title>"
            f'<text x="4" y="{y + 13}" fill="#222">{escape(name)}</text>'
            f'<rect x="{x:.1f}" y="{y}" width="{width:.1f}" height="{_ROW - 6}" rx="3" '
            f'fill="{fill}" stroke="{stroke}"/>'
            f'<text x="{x + width + 4:.1f}" y="{y + 13}" fill="#555">'
            f"{rec.duration * 1000:.1f} ms</text></g>"
        )
    parts.append(
        f'<text x="{_NAME_WIDTH}" y="{height - 4}" fill="#777">0</text>'
        f'<text x="{_TIMELINE_WIDTH - 70}" y="{height - 4}" fill="#777" text-anchor="end">'
        f"{span * 1000:.1f} ms</text></svg>"
    )
    return "".join(parts)
