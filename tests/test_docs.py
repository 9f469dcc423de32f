"""The python code in docs/*.md runs: each document's blocks, in order, in one namespace.

A block fenced as ```python no-run is shown but not executed (keep those rare).
docs/performance.md is maintained separately and is not executed here.
"""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import cloudpickle
import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
NOT_EXECUTED = {"performance.md"}
REQUIRED = {
    "index.md",
    "getting-started.md",
    "concepts.md",
    "lineage.md",
    "nodes.md",
    "execution.md",
    "backends.md",
    "dispatchers.md",
    "observability.md",
    "streaming.md",
    "triggers.md",
    "yaml.md",
    "visualization.md",
    "cli.md",
    "ui.md",
}
MAX_NO_RUN_BLOCKS = 2

FENCE = re.compile(r"^```(?P<info>[^\n`]*)\n(?P<body>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\]\((?P<target>[^)#\s]+)(?:#[^)]*)?\)")


def documents() -> list[Path]:
    return sorted(p for p in DOCS.glob("*.md") if p.name not in NOT_EXECUTED)


def python_blocks(text: str) -> list[tuple[int, str, bool]]:
    """(first line number, code, runnable) of every ```python block."""
    blocks: list[tuple[int, str, bool]] = []
    for match in FENCE.finditer(text):
        info = match["info"].strip().split()
        if not info or info[0] != "python":
            continue
        first_line = text.count("\n", 0, match.start("body")) + 1
        blocks.append((first_line, match["body"], "no-run" not in info[1:]))
    return blocks


def padded_source(text: str) -> str:
    """The runnable blocks at their own line numbers, so tracebacks point into the doc."""
    lines = [""] * (text.count("\n") + 1)
    for first_line, code, runnable in python_blocks(text):
        if runnable:
            for offset, line in enumerate(code.splitlines()):
                lines[first_line - 1 + offset] = line
    return "\n".join(lines) + "\n"


def test_required_documents_exist() -> None:
    present = {p.name for p in DOCS.glob("*.md")}
    assert sorted(REQUIRED - present) == []


@pytest.mark.parametrize("path", documents(), ids=lambda p: p.name)
def test_document_code_runs(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    blocks = python_blocks(text)
    if path.name != "index.md":
        assert any(runnable for _, _, runnable in blocks), f"{path.name} has no runnable example"
    assert sum(not runnable for _, _, runnable in blocks) <= MAX_NO_RUN_BLOCKS
    name = "docs_" + re.sub(r"\W", "_", path.stem)
    module = types.ModuleType(name)
    module.__file__ = str(path)
    sys.modules[name] = module
    # Worker processes cannot import a document: its knots travel by value, as a
    # script's (__main__) do.
    cloudpickle.register_pickle_by_value(module)
    try:
        exec(compile(padded_source(text), str(path), "exec"), module.__dict__)
    finally:
        cloudpickle.unregister_pickle_by_value(module)
        del sys.modules[name]


@pytest.mark.parametrize("path", documents(), ids=lambda p: p.name)
def test_relative_links_resolve(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    for match in LINK.finditer(text):
        target = match["target"]
        if "://" in target or target.startswith("mailto:"):
            continue
        if Path(target).name in NOT_EXECUTED:
            continue  # maintained separately
        assert (path.parent / target).exists(), f"{path.name} links to missing {target}"


def test_fence_parser() -> None:
    text = "intro\n```python\na = 1\n```\n```bash\nls\n```\n```python no-run\nb = (\n```\n"
    assert python_blocks(text) == [(3, "a = 1\n", True), (9, "b = (\n", False)]
    assert padded_source(text).splitlines()[2] == "a = 1"
