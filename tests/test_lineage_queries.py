"""Lineage records, cross-run queries, and the data store."""

from __future__ import annotations

import pytest

from pirn_like import (
    InMemoryDataStore,
    KnotConfig,
    Outcome,
    Parameter,
    RunRequest,
    RunStatus,
    Tapestry,
    __version__,
    content_hash,
    knot,
)

pytestmark = pytest.mark.anyio


@knot
async def scale(x: int, factor: int) -> int:
    return x * factor


@knot
async def add(a: int, b: int) -> int:
    return a + b


async def test_constants_enter_the_config_hash() -> None:
    with Tapestry() as t:
        x = Parameter("x", int)
        two = scale(x=x, factor=2, _config=KnotConfig(id="two"))
        three = scale(x=x, factor=3, _config=KnotConfig(id="three"))
        again = scale(x=x, factor=2, _config=KnotConfig(id="again"))
    assert two.config_hash != three.config_hash
    assert two.config_hash == again.config_hash  # the id is not part of it
    result = await t.run(RunRequest(parameters={"x": 1}))
    rec_two, rec_three = result.lineage_for("two"), result.lineage_for("three")
    assert rec_two.parent_input_hashes == rec_three.parent_input_hashes
    assert rec_two.execution_hash != rec_three.execution_hash
    assert rec_two.execution_hash == result.lineage_for("again").execution_hash


async def test_lineage_record_fields() -> None:
    with Tapestry() as t:
        x = Parameter("x", int)
        d = scale(x=x, factor=2, _config=KnotConfig(id="d"))
        add(a=x, b=d, _config=KnotConfig(id="answer"))
    result = await t.run(RunRequest(parameters={"x": 5}))
    rec = result.lineage_for("answer")
    assert rec.run_id == result.run_id
    assert rec.knot_class == f"{__name__}.add"
    assert rec.parent_input_hashes == {"a": content_hash(5), "b": content_hash(10)}
    assert rec.parent_knot_ids == {"a": "param:x", "b": "d"}
    assert rec.output_hash == content_hash(15)
    assert rec.outcome is Outcome.OK
    assert rec.dispatcher == "LocalDispatcher"
    assert rec.started_at <= rec.finished_at
    assert rec.pirn_like_version == __version__
    assert rec.attempts == 1


async def test_queries_join_across_runs() -> None:
    with Tapestry() as t:
        x = Parameter("x", int)
        d = scale(x=x, factor=2, _config=KnotConfig(id="d"))
        add(a=x, b=d, _config=KnotConfig(id="answer"))
    first = await t.run(RunRequest(parameters={"x": 5}))
    second = await t.run(RunRequest(parameters={"x": 5}))
    third = await t.run(RunRequest(parameters={"x": 6}))
    history = t.history

    out = first.lineage_for("answer").output_hash
    assert out is not None
    producers = await history.query_lineage_by_output_hash(out)
    assert {(r.run_id, r.knot_id) for r in producers} == {
        (first.run_id, "answer"),
        (second.run_id, "answer"),
    }
    consumers = await history.query_lineage_by_input_hash(content_hash(10))
    assert {(r.run_id, r.knot_id) for r in consumers} == {
        (first.run_id, "answer"),
        (second.run_id, "answer"),
    }
    by_knot = await history.query_lineage_by_knot_id("d")
    assert [r.run_id for r in by_knot] == [first.run_id, second.run_id, third.run_id]

    run = await history.get_run(first.run_id)
    assert run is not None
    assert run.status is RunStatus.SUCCEEDED
    assert run.parameter_hashes == {"x": content_hash(5)}
    runs = await history.list_runs()
    assert [r.run_id for r in runs] == [third.run_id, second.run_id, first.run_id]
    assert len(await history.get_lineage(first.run_id)) == 3
    assert await history.get_run("run-missing") is None


async def test_scrubbing_a_value_keeps_its_lineage() -> None:
    data = InMemoryDataStore()
    with Tapestry(data_store=data) as t:
        x = Parameter("x", int)
        scale(x=x, factor=2, _config=KnotConfig(id="d"))
    result = await t.run(RunRequest(parameters={"x": 21}))
    out = result.lineage_for("d").output_hash
    assert out is not None
    assert await data.get(out) == 42
    assert await data.delete(out)
    assert not await data.contains(out)
    with pytest.raises(KeyError, match="sha256:"):
        await data.get(out)
    assert [r.knot_id for r in await t.history.query_lineage_by_output_hash(out)] == ["d"]


async def test_data_store_keeps_none_and_reports_deletes_truthfully() -> None:
    data = InMemoryDataStore()
    none_hash = content_hash(None)
    await data.put(none_hash, None)
    assert await data.contains(none_hash)
    assert await data.get(none_hash) is None
    assert await data.delete(none_hash) is True
    assert await data.delete(none_hash) is False


async def test_same_value_from_different_knots_shares_a_hash() -> None:
    with Tapestry() as t:
        x = Parameter("x", int)
        scale(x=x, factor=4, _config=KnotConfig(id="four"))
        y = Parameter("y", int)
        scale(x=y, factor=2, _config=KnotConfig(id="two"))
    result = await t.run(RunRequest(parameters={"x": 1, "y": 2}))
    assert result.lineage_for("four").output_hash == result.lineage_for("two").output_hash


def test_lambdas_are_identified_by_their_own_expression_and_captured_values() -> None:
    from pirn_like import Gate

    def above(limit: int) -> object:
        return lambda v: v > limit

    with Tapestry():
        x = Parameter("x", int)
        f1, f2 = (lambda n: n > 1), (lambda n: n > 2)  # one line on purpose
        g1 = Gate(input=x, predicate=f1, _config=KnotConfig(id="g1"))
        g2 = Gate(input=x, predicate=f2, _config=KnotConfig(id="g2"))
        g3 = Gate(input=x, predicate=lambda n: n > 1, _config=KnotConfig(id="g3"))
        g4 = Gate(input=x, predicate=lambda n: n > 1, _config=KnotConfig(id="g4-other"))
        c1 = Gate(input=x, predicate=above(1), _config=KnotConfig(id="c1"))
        c2 = Gate(input=x, predicate=above(2), _config=KnotConfig(id="c2"))
    assert g1.config_hash != g2.config_hash
    assert g3.config_hash == g4.config_hash  # the id on the line does not leak in
    assert c1.config_hash != c2.config_hash


async def test_run_records_serialize_to_json() -> None:
    import json

    from pirn_like import RunRecord

    with Tapestry() as t:
        x = Parameter("x", int)
        scale(x=x, factor=2, _config=KnotConfig(id="d"))
    result = await t.run(RunRequest(parameters={"x": 4}))
    dumped = json.loads(result.model_dump_json(exclude={"results", "outputs"}))
    rec = next(r for r in dumped["lineage"] if r["knot_id"] == "d")
    assert rec["outcome"] == "ok"
    assert rec["parent_input_hashes"] == {"x": content_hash(4)}
    assert rec["output_hash"] == content_hash(8)
    assert "param:x" in repr(result)
    run = await t.history.get_run(result.run_id)
    assert run is not None
    assert RunRecord.model_validate_json(run.model_dump_json()) == run
