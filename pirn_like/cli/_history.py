"""Commands that read a run history: ``runs``, ``show``, ``lineage`` and ``report``."""

import enum
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import anyio
import networkx as nx
import typer
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from pirn_like import KnotLineage, RunRecord, RunStatus, history_from_url
from pirn_like.cli._console import bad_input, out_console, print_whole, reporting
from pirn_like.core._stored_run import stored_run_result
from pirn_like.protocols import RunHistory

__all__ = ["LineageFormat", "lineage", "report", "runs", "show"]

_T = TypeVar("_T")
HistoryURL = Annotated[
    str, typer.Option("--history", help="Run history URL, e.g. sqlite:///runs.db.")
]


def runs(
    history: HistoryURL,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many.")] = 20,
    status: Annotated[RunStatus | None, typer.Option("--status", help="Only this status.")] = None,
) -> None:
    """List recent runs, newest first."""
    records = _with_history(history, lambda h: h.list_runs(limit=limit, status=status))
    table = Table("run id", "status", "started", "seconds", "trigger")
    for record in records:
        trigger = (record.trigger or {}).get("kind", "")
        table.add_row(
            Text(record.run_id),
            Text(record.status.value, style=_status_style(record.status)),
            record.started_at.isoformat(timespec="seconds"),
            _seconds(record),
            Text(str(trigger)),
        )
    print_whole(table)


def show(
    run_id: Annotated[str, typer.Argument(help="The run to show.")],
    history: HistoryURL,
) -> None:
    """Show one run's knots (outcome, duration and output hash), then its errors with
    their tracebacks."""
    record, records = _with_history(history, lambda h: _run_and_lineage(h, run_id))
    console = out_console()
    console.print(
        Text.assemble(
            "run ", record.run_id, " ", (record.status.value, _status_style(record.status))
        )
    )
    table = Table("knot", "outcome", "seconds", "output hash")
    for rec in records:
        seconds = (rec.finished_at - rec.started_at).total_seconds()
        table.add_row(
            Text(rec.knot_id),
            Text(rec.outcome.value + (f" ({rec.skip_reason.value})" if rec.skip_reason else "")),
            f"{seconds:.3f}",
            rec.output_hash or "",
        )
    print_whole(table)
    for exc in record.exceptions:
        # Text, not markup: a message may hold anything, "[bold]" included.
        console.print(Text(f"{exc.knot_id}: {exc.type}: {exc.message}", style="red"))
        console.print(Text(exc.traceback.rstrip(), style="dim"))


class LineageFormat(enum.StrEnum):
    """How ``lineage`` shows a value's provenance."""

    TREE = "tree"
    MERMAID = "mermaid"
    SVG = "svg"


def lineage(
    content_hash: Annotated[str, typer.Argument(help="A value's content hash.")],
    history: HistoryURL,
    format: Annotated[
        LineageFormat,
        typer.Option("--format", "-f", help="tree (text), mermaid or svg (the whole graph)."),
    ] = LineageFormat.TREE,
) -> None:
    """Show where a value came from (upstream) and what was derived from it (downstream)."""
    graph = _with_history(history, lambda h: h.provenance(content_hash))
    if graph.number_of_nodes() <= 1:
        bad_input(f"no lineage in this history produces or consumes {content_hash!r}")
    if format is not LineageFormat.TREE:
        from pirn_like.viz import mermaid_for_provenance, svg_for_provenance

        draw = mermaid_for_provenance if format is LineageFormat.MERMAID else svg_for_provenance
        typer.echo(draw(graph, content_hash).rstrip("\n"))
        return
    root = Tree(Text(content_hash, style="bold"))
    _grow(graph, root.add("upstream (how it was made)"), content_hash, upstream=True, seen=set())
    _grow(graph, root.add("downstream (what used it)"), content_hash, upstream=False, seen=set())
    print_whole(root)


def report(
    run_id: Annotated[str, typer.Argument(help="The run to draw.")],
    history: HistoryURL,
    output: Annotated[Path, typer.Option("--output", "-o", help="The HTML file to write.")] = Path(
        "run.html"
    ),
) -> None:
    """Write a self-contained HTML report of a run from history."""
    from pirn_like.viz import html_for_run

    record, records = _with_history(history, lambda h: _run_and_lineage(h, run_id))
    result = stored_run_result(record, records)
    output.write_text(html_for_run(result), encoding="utf-8")
    out_console().print(Text(f"wrote {output}"))


def _with_history(url: str, query: Callable[[RunHistory], Awaitable[_T]]) -> _T:
    async def main() -> _T:
        async with history_from_url(url) as history:
            return await query(history)

    with reporting():
        return anyio.run(main)


async def _run_and_lineage(history: RunHistory, run_id: str) -> tuple[RunRecord, list[KnotLineage]]:
    record = await history.get_run(run_id)
    if record is None:
        bad_input(f"no run {run_id!r} in this history")
    return record, await history.get_lineage(run_id)


def _grow(
    graph: "nx.DiGraph[str]", branch: Tree, node: str, *, upstream: bool, seen: set[str]
) -> None:
    """Add ``node``'s neighbours (executions, then their values) under ``branch``."""
    if node in seen:  # a value used twice in one subtree is shown once
        return
    seen.add(node)
    neighbours = graph.predecessors(node) if upstream else graph.successors(node)
    for execution in sorted(neighbours):
        rec: KnotLineage = graph.nodes[execution]["record"]
        edge = graph.edges[node, execution] if not upstream else None
        via = f" (as {edge['input']})" if edge and "input" in edge else ""
        step = branch.add(Text(f"{rec.knot_id}{via} · run {rec.run_id} · {rec.outcome.value}"))
        values = graph.predecessors(execution) if upstream else graph.successors(execution)
        for value in sorted(values):
            if upstream:
                name = graph.edges[value, execution].get("input", "")
                label = Text(f"{name} = {value}")
            else:
                label = Text(value)
            _grow(graph, step.add(label), value, upstream=upstream, seen=seen)


def _seconds(record: RunRecord) -> str:
    if record.finished_at is None:
        return ""
    return f"{(record.finished_at - record.started_at).total_seconds():.3f}"


def _status_style(status: RunStatus) -> str:
    return {RunStatus.SUCCEEDED: "green", RunStatus.RUNNING: "yellow"}.get(status, "red")
