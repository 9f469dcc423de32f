"""The HTML run report is self-contained, complete and inert to hostile strings;
tapestries and runs display as their graph in notebooks."""

from __future__ import annotations

import json
import re
from html import unescape

import pytest
from _viz_runs import EVIL, failed_run

from pirn_like import KnotConfig, Ref, Tapestry, html_for_run, knot
from pirn_like.viz import svg_for_run

pytestmark = pytest.mark.anyio

KNOTS = {"param:x", "d", "boom", "after", "inc", "total"}
DATA = re.compile(r'<script type="application/json" id="pirn-data">(.*?)</script>', re.DOTALL)


def knot_data(page: str) -> list[dict[str, object]]:
    found = DATA.search(page)
    assert found is not None
    return json.loads(found.group(1))["knots"]


async def test_report_needs_no_network() -> None:
    _, result = await failed_run()
    page = html_for_run(result)
    assert page.startswith("<!DOCTYPE html>")
    # The only URL is the SVG namespace, which browsers never fetch.
    assert set(re.findall(r"https?://[^\s\"'<>]+", page)) == {"http://www.w3.org/2000/svg"}
    assert not re.search(r"<link|<img|<iframe|\ssrc=|@import|url\((?!#pirn-arrow\))", page)
    assert "default-src 'none'" in page  # and the page forbids fetching anything


async def test_report_holds_graph_timeline_hashes_errors_and_lineage_links() -> None:
    _, result = await failed_run()
    page = html_for_run(result)
    graph, timeline = page.split('class="pirn-graph"')[1], page.split('class="pirn-timeline"')[1]
    titles = [
        unescape(t)
        for t in re.findall(r"<title>(.*?)</title>", graph.split("</svg>")[0], re.DOTALL)
    ]
    assert {t.splitlines()[0].removeprefix("knot: ") for t in titles} == KNOTS
    d = next(t for t in titles if t.startswith("knot: d\n"))
    assert f"output hash: {result.lineage_for('d').output_hash}" in d
    assert "duration: " in d
    assert "class: " in d
    assert "outcome: ok" in d
    assert timeline.split("</svg>")[0].count('class="bar"') == len(KNOTS)
    assert [f'data-filter="{o}"' in page for o in ("ok", "err", "skipped")] == [True] * 3

    knots = {k["id"]: k for k in knot_data(page)}
    assert set(knots) == KNOTS
    boom = knots["boom"]
    rec = result.lineage_for("boom")
    assert boom["config_hash"] == rec.knot_config_hash
    assert boom["execution_hash"] == rec.execution_hash
    error = boom["error"]
    assert isinstance(error, dict)
    assert error["message"] == f"cannot use 10 {EVIL}"
    assert "Traceback (most recent call last)" in error["traceback"]
    # Lineage links: each input points at its parent's entry, each knot at its children.
    ids = [k["id"] for k in knot_data(page)]
    assert boom["inputs"] == [
        {
            "name": "a",
            "parent": "d",
            "parent_index": ids.index("d"),
            "hash": result.lineage_for("d").output_hash,
        }
    ]
    assert sorted(ids[i] for i in knots["d"]["children"]) == ["boom", "inc", "total"]  # type: ignore[union-attr]
    assert knots["after"]["skip_reason"] == "parent_failed"


async def test_hostile_ids_and_messages_are_rendered_inert() -> None:
    _, result = await failed_run()
    tampered = result.model_copy(
        update={
            "lineage": [
                rec._replace(knot_id="<script>alert(1)</script>") if rec.knot_id == "inc" else rec
                for rec in result.lineage
            ]
        }
    )
    page = html_for_run(tampered)
    # Exactly the report's own two script elements; every hostile string is escaped.
    assert page.count("<script") == 2
    assert "alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    names = {k["id"] for k in knot_data(page)}
    assert "<script>alert(1)</script>" in names  # still shown, as text


async def test_notebooks_show_runs_and_tapestries_as_graphs() -> None:
    t, result = await failed_run()
    for shown in (t._repr_html_(), result._repr_html_()):
        assert shown is not None
        assert shown.startswith("<svg")
        assert "<script" not in shown
        assert {unescape(m) for m in re.findall(r"<title>knot: ([^\n<]*)", shown)} == KNOTS
    assert 'data-outcome="err"' in result._repr_html_()
    assert 'data-outcome="none"' in (t._repr_html_() or "")
    assert result._repr_html_() == svg_for_run(result)


def test_a_tapestry_that_does_not_build_falls_back_to_its_repr() -> None:
    @knot
    async def echo(a: int) -> int:
        return a

    with Tapestry() as t:
        echo(a=Ref("b"), _config=KnotConfig(id="a"))
        echo(a=Ref("a"), _config=KnotConfig(id="b"))
    assert t._repr_html_() is None
