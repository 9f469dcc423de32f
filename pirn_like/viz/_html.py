"""A run as one self-contained HTML page: graph, timeline, details, filters."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from pirn_like.core._records import RunResult
from pirn_like.viz._assets import CSS, SCRIPT
from pirn_like.viz._graph import Graph, HasPlan, KnotView, graph_of_plan, graph_of_run
from pirn_like.viz._svg import graph_svg, outcome_of, timeline_svg

__all__ = ["html_for_run", "svg_for_run", "svg_for_tapestry"]

_OUTCOME_ORDER = ("ok", "err", "skipped", "cancelled", "none")


def svg_for_tapestry(tapestry: HasPlan) -> str:
    """The tapestry's graph as an inline SVG fragment (what a notebook shows)."""
    return graph_svg(graph_of_plan(tapestry))


def svg_for_run(result: RunResult) -> str:
    """The run's graph, coloured by outcome, as an inline SVG fragment."""
    return graph_svg(graph_of_run(result))


def html_for_run(result: RunResult) -> str:
    """One self-contained HTML page for ``result``: the graph (hover for id, class,
    outcome, hashes and duration; click for details, error and traceback, with links
    to parents and children), a timeline of knot timings and filter buttons by outcome.
    No network access: styles, script and drawings are inline."""
    graph = graph_of_run(result)
    counts: dict[str, int] = {}
    for k in graph.knots:
        counts[outcome_of(k)] = counts.get(outcome_of(k), 0) + 1
    buttons = "".join(
        f'<button type="button" data-filter="{o}" aria-pressed="true">{o} ({counts[o]})</button>'
        for o in _OUTCOME_ORDER
        if o in counts
    )
    seconds = (result.finished_at - result.started_at).total_seconds()
    status = str(result.status.value)
    title = escape(f"run {result.run_id}")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">"
        f"<title>{title}</title><style>{CSS}</style></head><body>"
        f'<header><h1>{title}</h1><div class="meta">'
        f'status <b class="status-{escape(status)}">{escape(status)}</b> · '
        f"{len(graph.knots)} knots · {seconds:.3f} s · started "
        f"{escape(result.started_at.isoformat())} · dispatcher {escape(result.dispatcher)}"
        '</div></header><main><div class="left">'
        f'<section><h2>Graph</h2><div class="filters">{buttons}</div>{graph_svg(graph)}</section>'
        f"<section><h2>Timeline</h2>{timeline_svg(graph)}</section></div>"
        '<section id="details"><h2>Details</h2><div id="details-body">'
        '<p class="hint">Click a knot to see its hashes, inputs and errors.</p></div></section>'
        "</main>"
        f'<script type="application/json" id="pirn-data">{_json(graph)}</script>'
        f"<script>{SCRIPT}</script></body></html>\n"
    )


def _json(graph: Graph) -> str:
    """The knots' details as JSON that cannot close its ``<script>`` element."""
    index = {k.id: i for i, k in enumerate(graph.knots)}
    children = graph.children()
    knots = [_details(k, index, [index[c] for c in children[k.id]]) for k in graph.knots]
    text = json.dumps({"knots": knots})
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _details(knot: KnotView, index: dict[str, int], children: list[int]) -> dict[str, Any]:
    rec = knot.lineage
    hashes = rec.parent_input_hashes if rec is not None else {}
    return {
        "id": knot.id,
        "knot_class": knot.knot_class,
        "outcome": knot.outcome,
        "skip_reason": rec.skip_reason.value if rec and rec.skip_reason else None,
        "skip_detail": rec.skip_detail if rec else None,
        "duration_ms": rec.duration * 1000 if rec else None,
        "started_at": rec.started_at.isoformat() if rec else None,
        "dispatcher": rec.dispatcher if rec else None,
        "attempts": rec.attempts if rec else None,
        "config_hash": rec.knot_config_hash if rec else None,
        "execution_hash": rec.execution_hash if rec else None,
        "output_hash": rec.output_hash if rec else None,
        "cached_from": rec.cached_from if rec else None,
        "inputs": [
            {"name": n, "parent": p, "parent_index": index.get(p), "hash": hashes.get(n)}
            for n, p in knot.parents.items()
        ],
        "children": children,
        "error": (
            {
                "type": knot.error.type,
                "message": knot.error.message,
                "traceback": knot.error.traceback,
            }
            if knot.error is not None
            else None
        ),
    }
