"""The lineage page: who produced a content hash and who consumed it, with links one
hop further up (the producers' inputs) and down (the consumers' outputs)."""

from __future__ import annotations

from pirn_like.core._records import KnotLineage
from pirn_like.ui._markup import attr, hash_link, page, run_href, text
from pirn_like.ui._queries import HashNeighbours

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
            '<section class="producers"><h2>Produced by (upstream: their inputs)</h2>'
            f"{_table(root, found.producers, upstream=True)}</section>"
            '<section class="consumers"><h2>Consumed by (downstream: their outputs)</h2>'
            f"{_table(root, found.consumers, upstream=False)}</section>"
        )
    return page("Lineage", body, root=root)


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
