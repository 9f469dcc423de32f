"""Mermaid views: a tapestry's structure and a run's outcomes, from lineage alone."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from _viz_runs import build, failed_run

from pirn_like import RunResult, mermaid_for_run, mermaid_for_tapestry

pytestmark = pytest.mark.anyio
NODE = re.compile(r'^    (?P<node>k\d+)\["(?P<label>[^"]*)"\]$', re.MULTILINE)

STRUCTURE = """\
flowchart LR
    k0["param:x"]
    k1["d"]
    k2["boom"]
    k3["after"]
    k4["inc"]
    k5["total"]
    k0 -->|"x"| k1
    k1 -->|"a"| k2
    k2 -->|"a"| k3
    k1 -->|"a"| k4
    k1 -->|"a"| k5
    k4 -->|"b"| k5
"""


def test_tapestry_structure_lists_every_knot_and_wire() -> None:
    assert mermaid_for_tapestry(build()) == STRUCTURE


async def test_run_colours_outcomes_and_marks_failed_and_skipped() -> None:
    _, result = await failed_run()
    text = mermaid_for_run(result)
    lines = text.splitlines()
    ids = {m["label"]: m["node"] for m in NODE.finditer(text)}
    assert set(ids) == {
        "param:x",
        "d",
        "boom · ✗ failed",
        "after · ⊘ skipped",
        "inc",
        "total",
    }
    failed, skipped = ids["boom · ✗ failed"], ids["after · ⊘ skipped"]
    assert f"    class {failed} err" in lines
    assert f"    class {skipped} skipped" in lines
    assert any(line.startswith("    classDef err fill:") for line in lines)
    assert any(line.startswith("    classDef skipped ") for line in lines)
    ok = sorted(ids[k] for k in ("param:x", "d", "inc", "total"))
    assert f"    class {','.join(ok)} ok" in lines
    assert f'{ids["d"]} -->|"a"| {failed}' in text
    assert f'{failed} -->|"a"| {skipped}' in text


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # aiosqlite is asyncio-only
async def test_run_loaded_from_history_draws_like_the_live_result(tmp_path: Path) -> None:
    t, live = await failed_run(f"sqlite:///{tmp_path / 'runs.db'}")
    record = await t.history.get_run(live.run_id)
    assert record is not None
    lineage = await t.history.get_lineage(live.run_id)
    await t.aclose()
    # Only what history keeps: the run record and its lineage (no values, no results).
    stored = RunResult(
        run_id=record.run_id,
        status=record.status,
        terminals_requested=record.terminals,
        outputs={},
        results={},
        skipped=[],
        exceptions=[],
        lineage=lineage,
        started_at=record.started_at,
        finished_at=record.finished_at or record.started_at,
        dispatcher="",
    )
    assert mermaid_for_run(stored) == mermaid_for_run(live)


async def test_hostile_ids_cannot_break_out_of_their_labels() -> None:
    _, result = await failed_run()
    evil = 'x"] --> owned["<b>'
    tampered = result.model_copy(
        update={
            "lineage": [
                rec._replace(knot_id=evil) if rec.knot_id == "inc" else rec
                for rec in result.lineage
            ]
        }
    )
    text = mermaid_for_run(tampered)
    assert '["x#quot;] --#gt; owned[#quot;#lt;b#gt;"]' in text
    assert "owned[" not in text.replace("owned[#quot;", "")
    assert "<b>" not in text


def test_import_pirn_like_does_not_load_the_views() -> None:
    code = (
        "import sys, json, pirn_like; before = 'pirn_like.viz' in sys.modules; "
        "pirn_like.mermaid_for_run; "
        "print(json.dumps([before, 'pirn_like.viz' in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [False, True]
