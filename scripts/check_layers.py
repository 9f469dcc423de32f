"""Fail if a pirn_like module imports from a layer above its own.

Imports flow one way: base (_errors, _exports, _ids, _version) <- core <- protocols <- engine,
implementations (dispatchers, backends, emitters) and nodes <- the Tapestry and the
public namespace.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

BASE = {"pirn_like._errors", "pirn_like._exports", "pirn_like._ids", "pirn_like._version"}
ALLOWED: dict[str, set[str]] = {
    "core": {"core"},
    "protocols": {"core"},
    "engine": {"core", "protocols", "engine"},
    # Remote dispatchers pass large values by reference through a data store.
    "dispatchers": {"core", "protocols", "dispatchers", "backends"},
    "backends": {"core", "protocols", "backends"},
    "emitters": {"core", "protocols", "emitters", "backends"},
    # Triggers and streams drive a Tapestry; leases and ValKey reuse backend connections.
    "triggers": {"core", "protocols", "triggers", "backends", "streaming", "_tapestry"},
    "streaming": {"core", "protocols", "streaming", "triggers", "backends", "_tapestry"},
    "nodes": {"core", "nodes"},
    # Views draw plans and lineage; they never import the engine.
    "viz": {"core", "viz"},
    # YAML pipelines build a Tapestry from nodes and backend URLs, and a service's triggers.
    "yaml": {"core", "protocols", "nodes", "backends", "_tapestry", "triggers", "yaml"},
    # The run explorer reads a history and draws runs; it serves HTTP like the webhook.
    "ui": {"core", "protocols", "backends", "viz", "triggers", "ui"},
    # Capability knots are knots and nodes over backends; the bridge is also a trigger.
    "capabilities": {
        "core",
        "protocols",
        "backends",
        "nodes",
        "triggers",
        "streaming",
        "_tapestry",
        "capabilities",
    },
}
# Public alias modules that keep an older import path working, and what they re-export.
ALIASES: dict[str, set[str]] = {
    # The seed's `from pirn_like.engine.dask_dispatcher import DaskDispatcher`.
    "pirn_like.engine.dask_dispatcher": {"pirn_like.dispatchers._dask"},
}
# Upward imports made inside one display method, only when a notebook calls it.
DISPLAY_HOOKS: dict[str, set[str]] = {
    "pirn_like.core._records": {"pirn_like.viz"},  # RunResult._repr_html_
}


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1].removesuffix(".py") if len(parts) > 1 else ""


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    problems: list[str] = []
    for path in sorted((root / "pirn_like").rglob("*.py")):
        module = ".".join(path.relative_to(root).with_suffix("").parts)
        own = layer(module)
        if own not in ALLOWED:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            for target in targets:
                if not target.startswith("pirn_like") or target in BASE:
                    continue
                if target in ALIASES.get(module, set()) | DISPLAY_HOOKS.get(module, set()):
                    continue
                if layer(target) not in ALLOWED[own]:
                    problems.append(
                        f"{path.relative_to(root)}:{node.lineno}: {own} imports {target}"
                    )
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
