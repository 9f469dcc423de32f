"""Cross-run provenance, derivation paths and retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import networkx as nx
import pytest

from pirn_like import (
    InMemoryDataStore,
    KnotConfig,
    Parameter,
    RunRecord,
    RunRequest,
    RunResult,
    RunStatus,
    Tapestry,
    content_hash,
    knot,
)

pytestmark = pytest.mark.anyio


@knot
async def double(x: int) -> int:
    return 2 * x


@knot
async def add(a: int, b: int) -> int:
    return a + b


@knot
async def label(n: int) -> str:
    return f"n={n}"


def _tapestry() -> Tapestry:
    t = Tapestry(data_store=InMemoryDataStore())
    with t:
        x = Parameter("x", int)
        y = Parameter("y", int)
        d = double(x=x, _config=KnotConfig(id="double"))
        s = add(a=d, b=y, _config=KnotConfig(id="sum"))
        label(n=s, _config=KnotConfig(id="label"))
    return t


async def _three_runs(t: Tapestry) -> tuple[RunResult, RunResult, RunResult]:
    """Runs A and B share x=1 (so they share double's output); C shares y=10 with A."""
    a = await t.run(RunRequest(parameters={"x": 1, "y": 10}))
    b = await t.run(RunRequest(parameters={"x": 1, "y": 20}))
    c = await t.run(RunRequest(parameters={"x": 5, "y": 10}))
    return a, b, c


def _executions(graph: nx.DiGraph[str], nodes: set[str]) -> set[tuple[str, str]]:
    return {
        (graph.nodes[n]["run_id"], graph.nodes[n]["knot_id"])
        for n in nodes
        if graph.nodes[n]["kind"] == "execution"
    }


async def test_impact_of_a_wrong_input_spans_every_run_that_used_it() -> None:
    t = _tapestry()
    a, b, _ = await _three_runs(t)
    x1 = content_hash(1)
    graph = await t.history.provenance(x1)
    downstream = _executions(graph, nx.descendants(graph, x1))
    # Everything computed from x=1, in both runs that used it; nothing of run C.
    assert downstream == {
        (a.run_id, "double"),
        (a.run_id, "sum"),
        (a.run_id, "label"),
        (b.run_id, "double"),
        (b.run_id, "sum"),
        (b.run_id, "label"),
    }
    assert content_hash("n=12") in nx.descendants(graph, x1)  # A's final output
    assert content_hash("n=22") in nx.descendants(graph, x1)  # B's
    assert content_hash("n=20") not in graph  # C's
    # Upstream of x=1: the parameter executions that produced it.
    assert _executions(graph, nx.ancestors(graph, x1)) == {
        (a.run_id, "param:x"),
        (b.run_id, "param:x"),
    }


async def test_provenance_of_an_output_reaches_every_input_of_every_run() -> None:
    t = _tapestry()
    a, _, _ = await _three_runs(t)
    out = a.lineage_for("label").output_hash
    assert out is not None
    graph = await t.history.provenance(out)
    upstream = nx.ancestors(graph, out)
    assert {content_hash(1), content_hash(10), content_hash(2), content_hash(12)} <= upstream
    assert (a.run_id, "sum") in _executions(graph, upstream)
    edge = graph.edges[content_hash(10), f"exec:{a.run_id}/sum"]
    assert edge["input"] == "b"
    assert graph.graph["root"] == out


async def test_lineage_path_lists_the_derivation_knot_by_knot() -> None:
    t = _tapestry()
    a, _, c = await _three_runs(t)
    out = a.lineage_for("label").output_hash
    assert out is not None
    path = await t.history.lineage_path(content_hash(1), out)
    assert [(r.run_id, r.knot_id) for r in path] == [
        (a.run_id, "double"),
        (a.run_id, "sum"),
        (a.run_id, "label"),
    ]
    # C's output was not derived from x=1.
    c_out = c.lineage_for("label").output_hash
    assert c_out is not None
    assert await t.history.lineage_path(content_hash(1), c_out) == []


async def test_retention_deletes_old_runs_and_only_values_nothing_else_uses() -> None:
    t = _tapestry()
    old = await t.run(RunRequest(parameters={"x": 1, "y": 10}))
    boundary = datetime.now(UTC)
    new = await t.run(RunRequest(parameters={"x": 1, "y": 99}))
    store = t.data_store
    assert store is not None
    report = await t.history.delete_runs_older_than(
        timedelta(days=30), data_store=store, now=boundary + timedelta(days=30)
    )
    assert report.deleted_runs == (old.run_id,)
    assert await t.history.get_run(old.run_id) is None
    assert await t.history.get_lineage(old.run_id) == []
    assert await t.history.get_run(new.run_id) is not None
    # x=1 and double(1)=2 are used by the kept run: kept. y=10, 12, "n=12" only by the old one.
    assert set(report.kept_values) == {content_hash(1), content_hash(2)}
    assert set(report.deleted_values) == {
        content_hash(10),
        content_hash(12),
        content_hash("n=12"),
    }
    for h in report.kept_values:
        assert await store.contains(h)
    for h in report.deleted_values:
        assert not await store.contains(h)
    # No lineage that remains points at a value that is gone.
    for rec in await t.history.get_lineage(new.run_id):
        for h in [*rec.parent_input_hashes.values(), rec.output_hash]:
            assert h is None or await store.contains(h)


async def test_retention_keeps_values_without_a_data_store_and_skips_running_runs() -> None:
    t = _tapestry()
    done = await t.run(RunRequest(parameters={"x": 1, "y": 10}))
    # A run still marked running (crashed, to be resumed) is as old, but is kept.
    crashed = RunRecord(run_id="crashed", status=RunStatus.RUNNING, started_at=done.started_at)
    await t.history.record_run_started(crashed)
    report = await t.history.delete_runs_older_than(
        timedelta(0), now=datetime.now(UTC) + timedelta(seconds=1)
    )
    assert report.deleted_runs == (done.run_id,)
    assert await t.history.get_run("crashed") == crashed
    assert report.deleted_values == ()
    assert t.data_store is not None
    assert await t.data_store.contains(content_hash("n=12"))
