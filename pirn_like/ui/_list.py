"""The runs list page: a filter form and one row per run."""

from __future__ import annotations

from pirn_like.core._records import RunRecord, RunStatus
from pirn_like.ui._markup import attr, page, run_href, runs_href, text
from pirn_like.ui._queries import NO_TRIGGER, RunFilter, trigger_kind

__all__ = ["runs_page"]

_TRIGGER_KINDS = (
    NO_TRIGGER,
    "cron",
    "webhook",
    "kafka",
    "valkey",
    "file_watch",
    "file_tail",
    "iterable",
)


def runs_page(root: str, wanted: RunFilter, runs: list[RunRecord], more: bool) -> str:
    """The list of ``runs`` under the form that chose them; ``more`` links to older runs."""
    rows = "".join(_row(root, run) for run in runs)
    table = (
        "<table><thead><tr><th>Run</th><th>Status</th><th>Trigger</th><th>Started</th>"
        f"<th>Duration</th><th>Knots</th><th>Labels</th></tr></thead><tbody>{rows}</tbody></table>"
        if runs
        else '<p class="empty">No runs match.</p>'
    )
    older = ""
    if more and runs:
        query = _query(wanted) | {"before": runs[-1].started_at.isoformat()}
        older = f'<p><a class="older" href={attr(runs_href(root, query))}>Older runs →</a></p>'
    body = (
        f"<h1>Runs</h1><section>{_form(wanted)}</section>"
        f"<section><h2>{len(runs)} run{'' if len(runs) == 1 else 's'}</h2>{table}{older}</section>"
    )
    return page("Runs", body, root=root)


def _row(root: str, run: RunRecord) -> str:
    status = run.status.value
    duration = (
        f"{(run.finished_at - run.started_at).total_seconds():.3f} s"
        if run.finished_at is not None
        else "—"
    )
    labels = ", ".join(f"{k}={v}" for k, v in sorted(run.labels.items()))
    return (
        f'<tr class="run" data-status={attr(status)}>'
        f'<td><a class="run-link" href={attr(run_href(root, run.run_id))}><code>'
        f"{text(run.run_id)}</code></a></td>"
        f'<td class="status status-{text(status)}">{text(status)}</td>'
        f'<td class="trigger">{text(trigger_kind(run))}</td>'
        f"<td>{text(run.started_at.isoformat(timespec='seconds'))}</td>"
        f"<td>{duration}</td><td>{run.knot_count}</td><td>{text(labels)}</td></tr>"
    )


def _form(wanted: RunFilter) -> str:
    statuses = "".join(
        f"<option value={attr(s.value)}{' selected' if wanted.status is s else ''}>"
        f"{text(s.value)}</option>"
        for s in RunStatus
    )
    kinds = "".join(f"<option value={attr(k)}></option>" for k in _TRIGGER_KINDS)
    q = _query(wanted)
    return (
        '<form class="filters" method="get" action="">'
        f'<label>Status<select name="status"><option value="">any</option>{statuses}</select>'
        "</label>"
        f'<label>Trigger kind<input name="trigger" list="trigger-kinds" '
        f'value={attr(q.get("trigger", ""))} placeholder="any"></label>'
        f'<datalist id="trigger-kinds">{kinds}</datalist>'
        f'<label>Started after<input name="after" value={attr(q.get("after", ""))} '
        'placeholder="2026-01-31T12:00"></label>'
        f'<label>Started before<input name="before" value={attr(q.get("before", ""))} '
        'placeholder="2026-01-31T18:00"></label>'
        f'<label>Limit<input name="limit" type="number" min="1" max="500" '
        f"value={attr(wanted.limit)}></label>"
        '<button type="submit">Filter</button></form>'
    )


def _query(wanted: RunFilter) -> dict[str, str]:
    """The filter as query parameters (unset ones left out)."""
    query = {
        "status": wanted.status.value if wanted.status is not None else "",
        "trigger": wanted.trigger or "",
        "after": wanted.after.isoformat() if wanted.after is not None else "",
        "before": wanted.before.isoformat() if wanted.before is not None else "",
        "limit": str(wanted.limit) if wanted.limit != 50 else "",
    }
    return {k: v for k, v in query.items() if v}
