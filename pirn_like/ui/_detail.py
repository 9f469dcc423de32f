"""One run's page: what started it, its graph and timeline, and every knot."""

from __future__ import annotations

from pirn_like.core._records import KnotLineage, RunRecord, RunResult
from pirn_like.core._results import ExceptionRecord, Outcome
from pirn_like.ui._markup import attr, hash_code, hash_link, page, run_href, text
from pirn_like.ui._queries import trigger_kind
from pirn_like.viz import svg_for_run
from pirn_like.viz._graph import graph_of_run
from pirn_like.viz._svg import timeline_svg

__all__ = ["run_page"]


def run_page(root: str, record: RunRecord, result: RunResult) -> str:
    """The run's summary, graph, timeline, failures and knot table. Outputs appear as
    hashes only: history keeps no values."""
    lineage = sorted(result.lineage, key=lambda rec: rec.started_at)
    body = (
        f"<h1>Run <code>{text(record.run_id)}</code></h1>"
        f"<section><h2>Summary</h2>{_summary(root, record)}</section>"
        f"<section><h2>Graph</h2>{svg_for_run(result)}</section>"
        f"<section><h2>Timeline</h2>{timeline_svg(graph_of_run(result))}</section>"
        f"{_failures(root, lineage, result.exceptions)}"
        f"<section><h2>Knots</h2>{_knots(root, lineage)}</section>"
    )
    return page(f"run {record.run_id}", body, root=root)


def _summary(root: str, record: RunRecord) -> str:
    status = record.status.value
    items: list[tuple[str, str]] = [
        ("status", f'<span class="status status-{text(status)}">{text(status)}</span>'),
        ("started", text(record.started_at.isoformat())),
        ("finished", text(record.finished_at.isoformat()) if record.finished_at else "—"),
        ("trigger", text(trigger_kind(record))),
    ]
    for key, value in sorted((record.trigger or {}).items()):
        if key != "kind":
            items.append((f"trigger {key}", text(value)))
    items.append(("terminals", text(", ".join(record.terminals)) or "—"))
    for name, content_hash in sorted(record.parameter_hashes.items()):
        items.append((f"parameter {name}", hash_link(root, content_hash)))
    for key, value in sorted(record.labels.items()):
        items.append((f"label {key}", text(value)))
    if record.parent_run_id is not None:
        parent = run_href(root, record.parent_run_id, record.parent_knot_id)
        items.append(("parent run", f"<a href={attr(parent)}>{text(record.parent_run_id)}</a>"))
    if record.pirn_like_version:
        items.append(("pirn_like", text(record.pirn_like_version)))
    rows = "".join(f"<dt>{text(k)}</dt><dd>{v}</dd>" for k, v in items)
    return f'<dl class="meta">{rows}</dl>'


def _failures(root: str, lineage: list[KnotLineage], exceptions: list[ExceptionRecord]) -> str:
    """Failed knots with their error record id, type, message and traceback (when
    history kept the record), then knots that did not run and why."""
    failed = [rec for rec in lineage if rec.outcome is Outcome.ERR]
    if not failed:
        return ""
    by_id = {e.id: e for e in exceptions}
    items = "".join(
        f'<li class="error"><a href={attr(run_href(root, rec.run_id, rec.knot_id))}>'
        f"{text(rec.knot_id)}</a> failed{_error_id(rec)}"
        f"{_exception(by_id.get(rec.error_record_id or ''))}</li>"
        for rec in failed
    )
    items += "".join(
        f"<li><a href={attr(run_href(root, rec.run_id, rec.knot_id))}>{text(rec.knot_id)}</a>"
        f" skipped: {text(rec.skip_reason.value)}"
        + (f" ({text(rec.skip_detail)})" if rec.skip_detail else "")
        + "</li>"
        for rec in lineage
        if rec.skip_reason is not None
    )
    return f'<section class="failures"><h2>Errors</h2><ul class="plain">{items}</ul></section>'


def _error_id(rec: KnotLineage) -> str:
    if rec.error_record_id is None:
        return ""
    return f" (error record <code>{text(rec.error_record_id)}</code>)"


def _exception(record: ExceptionRecord | None) -> str:
    """The error's type and message, and its traceback folded away."""
    if record is None:
        return ""
    return (
        f'<br><span class="exception-message">{text(record.type)}: {text(record.message)}</span>'
        f"<details><summary>traceback</summary>"
        f'<pre class="traceback">{text(record.traceback)}</pre></details>'
    )


def _knots(root: str, lineage: list[KnotLineage]) -> str:
    if not lineage:
        return '<p class="empty">No knot records.</p>'
    rows = "".join(_knot_row(root, rec) for rec in lineage)
    return (
        "<table><thead><tr><th>Knot</th><th>Outcome</th><th>Duration</th><th>Attempts</th>"
        "<th>Inputs</th><th>Output</th><th>Config</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def _knot_row(root: str, rec: KnotLineage) -> str:
    outcome = rec.outcome.value
    note = ""
    if rec.skip_reason is not None:
        note = f"<br><small>{text(rec.skip_reason.value)}"
        note += f": {text(rec.skip_detail)}" if rec.skip_detail else ""
        note += "</small>"
    elif rec.error_record_id is not None:
        note = f"<br><small>error {hash_code(rec.error_record_id, 'error-id')}</small>"
    if rec.cached_from is not None:
        note += (
            f"<br><small>cached from <a href={attr(run_href(root, rec.cached_from))}>"
            f"{text(rec.cached_from)}</a></small>"
        )
    inputs = "".join(
        f"<li>{text(name)} ← {hash_link(root, content_hash)}"
        + (f" from {text(rec.parent_knot_ids[name])}" if name in rec.parent_knot_ids else "")
        + "</li>"
        for name, content_hash in rec.parent_input_hashes.items()
    )
    duration = (rec.finished_at - rec.started_at).total_seconds() * 1000
    return (
        f'<tr class="knot-row" id={attr(f"knot-{rec.knot_id}")} data-outcome={attr(outcome)}>'
        f"<td><b>{text(rec.knot_id)}</b><br><small>{text(rec.knot_class)}</small></td>"
        f'<td class="outcome-{text(outcome)}">{text(outcome)}{note}</td>'
        f"<td>{duration:.1f} ms</td><td>{rec.attempts}</td>"
        f'<td><ul class="plain">{inputs}</ul></td>'
        f"<td>{hash_link(root, rec.output_hash)}</td>"
        f"<td>{hash_code(rec.knot_config_hash, 'config')}</td></tr>"
    )
