"""Mermaid flowcharts of a tapestry and of a run."""

from __future__ import annotations

from pirn_like.core._records import RunResult
from pirn_like.viz._graph import Graph, HasPlan, graph_of_plan, graph_of_run

__all__ = ["mermaid_for_run", "mermaid_for_tapestry", "mermaid_label"]

# Outcome -> (class definition, mark shown in the label, so it reads without colour).
_STYLES = {
    "ok": ("fill:#d9f2e0,stroke:#2e8b57,color:#123", "ok"),
    "err": ("fill:#f9d6d5,stroke:#c0392b,stroke-width:2px,color:#400", "✗ failed"),
    "skipped": ("fill:#eeeeee,stroke:#888,stroke-dasharray:4 3,color:#444", "⊘ skipped"),
    "cancelled": ("fill:#fdf0d0,stroke:#b7791f,stroke-dasharray:2 2,color:#420", "■ cancelled"),
}


def mermaid_for_tapestry(tapestry: HasPlan) -> str:
    """A Mermaid ``flowchart LR`` of ``tapestry``'s knots and wiring."""
    return _flowchart(graph_of_plan(tapestry), outcomes=False)


def mermaid_for_run(result: RunResult) -> str:
    """A Mermaid flowchart of the run, each knot coloured by outcome; failed and
    skipped knots are also marked in their labels. Drawn from the lineage alone, so
    it works for runs loaded from history."""
    return _flowchart(graph_of_run(result), outcomes=True)


def _flowchart(graph: Graph, *, outcomes: bool) -> str:
    # Knot ids may hold any character: nodes get generated ids, the knot id is a label.
    names = {k.id: f"k{i}" for i, k in enumerate(graph.knots)}
    lines = ["flowchart LR"]
    for k in graph.knots:
        label = k.id
        if outcomes and k.outcome is not None and k.outcome != "ok":
            label = f"{label} · {_STYLES[k.outcome][1]}"
        lines.append(f'    {names[k.id]}["{mermaid_label(label)}"]')
    for k in graph.knots:
        for name, parent in k.parents.items():
            lines.append(f'    {names[parent]} -->|"{mermaid_label(name)}"| {names[k.id]}')
    if outcomes:
        used = sorted({k.outcome for k in graph.knots if k.outcome is not None})
        for outcome in used:
            lines.append(f"    classDef {outcome} {_STYLES[outcome][0]}")
        for outcome in used:
            members = ",".join(names[k.id] for k in graph.knots if k.outcome == outcome)
            lines.append(f"    class {members} {outcome}")
    return "\n".join(lines) + "\n"


def mermaid_label(text: str) -> str:
    """``text`` safe inside a quoted Mermaid label: markup characters as entity codes."""
    out = text.replace("#", "#35;")
    for char, code in (('"', "#quot;"), ("<", "#lt;"), (">", "#gt;"), ("&", "#amp;")):
        out = out.replace(char, code)
    return out.replace("\n", " ")
