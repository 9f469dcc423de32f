"""The lineage page: a content hash's whole provenance graph (every hop upstream and
downstream, across runs; click a node to move on), and tables of who produced and who
consumed it, with links one hop further up and down."""

from __future__ import annotations

from pirn_like.core._records import KnotLineage
from pirn_like.ui._markup import attr, hash_link, lineage_href, page, run_href, text
from pirn_like.ui._queries import HashNeighbours
from pirn_like.viz import (
    ProvenanceNode,
    mermaid_for_provenance,
    provenance_nodes,
    svg_for_provenance,
)

__all__ = ["lineage_page"]


def lineage_page(root: str, content_hash: str | None, found: HashNeighbours | None) -> str:
    """A search form and, for ``content_hash``, its producers and consumers."""
    form = (
        '<form class="filters" method="get" action="">'
        f'<label>Content hash<input name="hash" size="80" value={attr(content_hash or "")} '
        'placeholder="sha256:…"></label><button type="submit">Search</button></form>'
    )
    body = f"<h1>Lineage</h1><section>{form}</section>"
    if content_hash is not None and found is not None:
        body += (
            f'<section><h2>Hash</h2><code class="searched">{text(content_hash)}</code></section>'
            f"{_provenance(root, content_hash, found)}"
            '<section class="producers"><h2>Produced by (upstream: their inputs)</h2>'
            f"{_table(root, found.producers, upstream=True)}</section>"
            '<section class="consumers"><h2>Consumed by (downstream: their outputs)</h2>'
            f"{_table(root, found.consumers, upstream=False)}</section>"
        )
    return page("Lineage", body, root=root)


def _provenance(root: str, content_hash: str, found: HashNeighbours) -> str:
    """The whole provenance graph; each value links to its lineage, each execution to
    its knot in its run."""

    def link(node: ProvenanceNode) -> str:
        if node.record is None:
            return lineage_href(root, node.id)
        return run_href(root, node.record.run_id, node.record.knot_id)

    graph = found.provenance
    nodes, truncated = provenance_nodes(graph, content_hash)
    hops_up = -min(n.column for n in nodes)
    hops_down = max(n.column for n in nodes)
    executions = sum(1 for n in nodes if n.record is not None)
    summary = (
        f"{executions} execution{'' if executions == 1 else 's'}, "
        f"{hops_up} hop{'' if hops_up == 1 else 's'} upstream, "
        f"{hops_down} hop{'' if hops_down == 1 else 's'} downstream"
    )
    more = (
        f'<p class="empty">Showing the {len(nodes)} nodes nearest the hash of '
        f"{graph.number_of_nodes()}.</p>"
        if truncated
        else ""
    )
    mermaid = mermaid_for_provenance(graph, content_hash)
    return (
        '<section class="provenance"><h2>Provenance (upstream ← hash → downstream)</h2>'
        f'<p class="summary">{text(summary)}. Click a value for its lineage, an execution '
        f"for its run.</p>{more}{svg_for_provenance(graph, content_hash, link=link)}"
        f'<details><summary>Mermaid</summary><pre class="mermaid-source">{text(mermaid)}'
        "</pre></details></section>"
    )


def _table(root: str, records: list[KnotLineage], *, upstream: bool) -> str:
    if not records:
        return '<p class="empty">None recorded.</p>'
    heading = "Inputs" if upstream else "Output"
    rows = "".join(_row(root, rec, upstream=upstream) for rec in records)
    return (
        f"<table><thead><tr><th>Run</th><th>Knot</th><th>Outcome</th><th>Started</th>"
        f"<th>{heading}</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _row(root: str, rec: KnotLineage, *, upstream: bool) -> str:
    if upstream:
        onward = "".join(
            f"<li>{text(name)} ← {hash_link(root, content_hash)}</li>"
            for name, content_hash in rec.parent_input_hashes.items()
        )
        onward = f'<ul class="plain">{onward}</ul>' if onward else '<span class="empty">—</span>'
    else:
        onward = hash_link(root, rec.output_hash)
    outcome = rec.outcome.value
    return (
        f'<tr class="lineage-row">'
        f'<td><a class="run-link" href={attr(run_href(root, rec.run_id))}><code>'
        f"{text(rec.run_id)}</code></a></td>"
        f'<td><a class="knot-link" href={attr(run_href(root, rec.run_id, rec.knot_id))}>'
        f"{text(rec.knot_id)}</a></td>"
        f'<td class="outcome-{text(outcome)}">{text(outcome)}</td>'
        f"<td>{text(rec.started_at.isoformat(timespec='seconds'))}</td><td>{onward}</td></tr>"
    )
