"""Views of tapestries and runs: Mermaid flowcharts, inline SVG and HTML reports.

Views are drawn from a tapestry's plan or from a run's lineage alone (so runs loaded
from history draw too); nothing here imports the engine.
"""

from pirn_like._exports import publish
from pirn_like.viz._html import html_for_run, svg_for_run, svg_for_tapestry
from pirn_like.viz._mermaid import mermaid_for_run, mermaid_for_tapestry
from pirn_like.viz._provenance import (
    ProvenanceNode,
    mermaid_for_provenance,
    provenance_nodes,
    svg_for_provenance,
)

__all__ = [
    "ProvenanceNode",
    "html_for_run",
    "mermaid_for_provenance",
    "mermaid_for_run",
    "mermaid_for_tapestry",
    "provenance_nodes",
    "svg_for_provenance",
    "svg_for_run",
    "svg_for_tapestry",
]

publish(__name__, globals(), __all__)
