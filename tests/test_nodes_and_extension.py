"""Built-in nodes, SubTapestry, mid-run extension, emitters and validation."""

from __future__ import annotations

import threading
from typing import Any

import anyio
import pytest

from pirn_like import (
    Aggregator,
    DictMap,
    Err,
    Gate,
    Knot,
    KnotConfig,
    KnotFinished,
    MemoryEmitter,
    Outcome,
    Parameter,
    RunFinished,
    RunRequest,
    RunStarted,
    Sink,
    Skipped,
    SkipReason,
    Source,
    SubTapestry,
    Tapestry,
    WiringError,
    ZipMap,
    knot,
)

pytestmark = pytest.mark.anyio


@knot
async def numbers() -> list[int]:
    return [1, 2, 3]


@knot
async def words() -> list[str]:
    return ["a", "b", "c"]


async def test_gate_closed_skips_downstream_with_reason_in_lineage() -> None:
    @knot
    async def after(v: int) -> int:
        return v

    with Tapestry() as t:
        x = Parameter("x", int)
        g = Gate(input=x, predicate=lambda v: v > 10, _config=KnotConfig(id="g"))
        after(v=g, _config=KnotConfig(id="after"))
    closed = await t.run(RunRequest(parameters={"x": 3}))
    assert closed.lineage_for("g").skip_reason is SkipReason.GATE_CLOSED
    assert closed.lineage_for("after").skip_reason is SkipReason.PARENT_SKIPPED
    assert closed.succeeded
    opened = await t.run(RunRequest(parameters={"x": 30}))
    assert opened.outputs["after"] == 30


async def test_gate_predicates_are_part_of_identity() -> None:
    with Tapestry():
        x = Parameter("x", int)
        g1 = Gate(input=x, predicate=lambda v: v > 1, _config=KnotConfig(id="g1"))
        g2 = Gate(input=x, predicate=lambda v: v > 2, _config=KnotConfig(id="g2"))
    assert g1.config_hash != g2.config_hash


async def test_aggregator_combines_parents() -> None:
    with Tapestry() as t:
        a = Parameter("a", int)
        b = Parameter("b", int)
        Aggregator(a=a, b=b, combine=lambda **v: v["a"] * v["b"], _config=KnotConfig(id="agg"))
    assert (await t.run(RunRequest(parameters={"a": 6, "b": 7}))).outputs["agg"] == 42


async def test_zipmap_and_dictmap() -> None:
    @knot
    async def pair(n: int, w: str, sep: str) -> str:
        return f"{w}{sep}{n}"

    @knot
    async def table() -> dict[str, int]:
        return {"x": 1, "y": 2}

    @knot
    async def label(key: str, value: int) -> str:
        return f"{key}={value}"

    with Tapestry() as t:
        ZipMap(
            over={
                "n": numbers(_config=KnotConfig(id="nums")),
                "w": words(_config=KnotConfig(id="ws")),
            },
            each=pair,
            sep=":",
            _config=KnotConfig(id="zipped"),
        )
        DictMap(
            over=table(_config=KnotConfig(id="table")),
            each=label,
            bind="value",
            key_bind="key",
            _config=KnotConfig(id="labels"),
        )
    result = await t.run()
    assert result.outputs["zipped"] == ["a:1", "b:2", "c:3"]
    assert result.outputs["labels"] == {"x": "x=1", "y": "y=2"}
    assert result.lineage_for("labels[y]").outcome is Outcome.OK
    assert set(result.lineage_for("zipped[2]").parent_input_hashes) == {"n", "w", "sep"}


async def test_zipmap_length_mismatch_fails() -> None:
    @knot
    async def two() -> list[int]:
        return [1, 2]

    @knot
    async def pair(n: int, w: str) -> str:
        return w

    with Tapestry() as t:
        ZipMap(
            over={"n": two(_config=KnotConfig(id="two")), "w": words(_config=KnotConfig(id="ws"))},
            each=pair,
            _config=KnotConfig(id="z"),
        )
    err = (await t.run()).result("z")
    assert isinstance(err, Err)
    assert "different lengths" in err.record.message


def test_map_binding_errors_are_clear() -> None:
    from pirn_like import Map

    @knot
    async def two_inputs(a: int, b: int) -> int:
        return a + b

    with Tapestry():
        src = numbers(_config=KnotConfig(id="src"))
        with pytest.raises(WiringError, match=r"cannot tell which input .* pass bind="):
            Map(over=src, each=two_inputs, _config=KnotConfig(id="m"))
        with pytest.raises(WiringError, match=r"needs 'b'"):
            Map(over=src, each=two_inputs, bind="a", _config=KnotConfig(id="m2"))


async def test_map_items_have_distinct_lineage_per_item() -> None:
    from pirn_like import Map

    @knot
    async def square(n: int) -> int:
        return n * n

    with Tapestry() as t:
        Map(over=numbers(_config=KnotConfig(id="nums")), each=square, _config=KnotConfig(id="sq"))
    result = await t.run()
    items = [result.lineage_for(f"sq[{i}]") for i in range(3)]
    assert len({r.output_hash for r in items}) == 3
    assert len({r.execution_hash for r in items}) == 3
    assert all(r.knot_class.endswith("square") for r in items)


class ReadConfig(Source):
    async def process(self, path: str, **_: Any) -> dict[str, str]:
        return {"path": path}


class Collect(Sink):
    def __init__(self, **kwargs: Any) -> None:
        self.seen: list[Any] = []
        super().__init__(**kwargs)

    async def process(self, value: Any, **_: Any) -> None:
        self.seen.append(value)


async def test_source_and_sink() -> None:
    with Tapestry() as t:
        cfg = ReadConfig(path="/etc/app", _config=KnotConfig(id="cfg"))
        sink = Collect(value=cfg, _config=KnotConfig(id="sink"))
    result = await t.run()
    assert sink.seen == [{"path": "/etc/app"}]
    assert result.outputs["sink"] is None
    with pytest.raises(WiringError, match="source 'bad' cannot have parents"):
        ReadConfig(path=cfg, _config=KnotConfig(id="bad"))


class ScorePipeline(SubTapestry):
    async def process(self, raw: list[int], threshold: int, **_: Any) -> Knot:
        @knot
        async def keep(values: list[int], limit: int) -> list[int]:
            return [v for v in values if v >= limit]

        @knot
        async def total(values: list[int]) -> int:
            return sum(values)

        kept = keep(values=raw, limit=threshold, _config=KnotConfig(id="keep"))
        return total(values=kept, _config=KnotConfig(id="total"))


async def test_sub_tapestry_runs_inner_pipeline_as_child_run() -> None:
    with Tapestry() as t:
        ScorePipeline(
            raw=numbers(_config=KnotConfig(id="nums")),
            threshold=2,
            _config=KnotConfig(id="score"),
        )
    result = await t.run()
    assert result.outputs["score"] == 5
    runs = await t.history.list_runs()
    child = [r for r in runs if r.parent_run_id == result.run_id]
    assert len(child) == 1
    assert child[0].parent_knot_id == "score"
    inner = {r.knot_id for r in await t.history.get_lineage(child[0].run_id)}
    assert inner == {"keep", "total"}


async def test_sub_tapestry_failure_is_an_err() -> None:
    class Broken(SubTapestry):
        async def process(self, **_: Any) -> Knot:
            @knot
            async def fail() -> int:
                raise ValueError("inner boom")

            return fail(_config=KnotConfig(id="fail"))

    with Tapestry() as t:
        Broken(_config=KnotConfig(id="broken"))
    err = (await t.run()).result("broken")
    assert isinstance(err, Err)
    assert err.record.type.endswith("SubTapestryError")
    assert "inner boom" in err.record.message


async def test_extensible_run_merges_knots_registered_mid_run() -> None:
    t = Tapestry()

    @knot
    async def double(v: int) -> int:
        return v * 2

    @knot
    async def spawner(n: int) -> int:
        for i in range(n):
            double(v=i + 10, _config=KnotConfig(id=f"spawned{i}"), tapestry=t)
        return n

    with t:
        spawner(n=3, _config=KnotConfig(id="spawner"))
    result = await t.run(extensible=True)
    assert result.outputs["spawner"] == 3
    assert [result.outputs[f"spawned{i}"] for i in range(3)] == [20, 22, 24]
    assert {"spawned0", "spawned1", "spawned2"} <= set(result.terminals_requested)


async def test_extension_from_a_worker_thread_and_wiring_to_running_knots() -> None:
    t = Tapestry()
    release = anyio.Event()

    @knot
    async def slow() -> int:
        await release.wait()
        return 5

    @knot
    async def plus_one(v: int) -> int:
        return v + 1

    def register_from_thread(parent: Knot) -> None:
        plus_one(v=parent, _config=KnotConfig(id="late"), tapestry=t)

    with t:
        s = slow(_config=KnotConfig(id="slow"))

    @knot
    def registrar() -> str:
        register_from_thread(s)
        return threading.current_thread().name

    t.register(registrar(_config=KnotConfig(id="registrar")))

    async def release_when_registered() -> None:
        while "late" not in t.knots:
            await anyio.lowlevel.checkpoint()
        release.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(release_when_registered)
        with anyio.fail_after(5):
            result = await t.run(extensible=True)
    assert result.outputs["late"] == 6


async def test_knots_registered_without_extensible_wait_for_next_run() -> None:
    t = Tapestry()

    @knot
    async def noop() -> int:
        return 1

    @knot
    async def spawner() -> int:
        noop(_config=KnotConfig(id="later"), tapestry=t)
        return 0

    with t:
        spawner(_config=KnotConfig(id="spawner"))
    first = await t.run()
    assert "later" not in first.outputs
    second = await t.run()
    assert second.outputs["later"] == 1


async def test_emitters_see_events_and_a_broken_emitter_never_breaks_a_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken:
        async def __aenter__(self) -> Broken:
            return self

        async def __aexit__(self, *exc_info: object) -> None:
            return None

        async def emit(self, event: object) -> None:
            raise RuntimeError("emitter down")

    memory = MemoryEmitter()
    with Tapestry(emitters=[Broken(), memory]) as t:
        x = Parameter("x", int)
        Gate(input=x, predicate=bool, _config=KnotConfig(id="g"))
    result = await t.run(RunRequest(parameters={"x": 0}))
    assert result.succeeded
    assert await t.flush_emitters()  # runs do not wait for their emitters
    kinds = [type(e).__name__ for e in memory.events]
    assert kinds[0] == "RunStarted"
    assert kinds[-1] == "RunFinished"
    finished = [e for e in memory.events if isinstance(e, KnotFinished)]
    assert {e.lineage.knot_id for e in finished} == {"param:x", "g"}
    assert isinstance(memory.events[0], RunStarted)
    assert isinstance(memory.events[-1], RunFinished)
    assert memory.events[-1].result.run_id == result.run_id
    assert "emitter down" in caplog.text


async def test_validate_io_checks_inputs_and_output() -> None:
    @knot
    async def typed(v: int) -> str:
        return v  # type: ignore[return-value]

    @knot
    async def coerces(v: int) -> int:
        return v

    with Tapestry() as t:
        typed(v=3, _config=KnotConfig(id="bad_out", validate_io=True))
        coerces(v="12", _config=KnotConfig(id="coerced", validate_io=True))  # type: ignore[arg-type]
        coerces(v="twelve", _config=KnotConfig(id="bad_in", validate_io=True))  # type: ignore[arg-type]
        typed(v=3, _config=KnotConfig(id="unchecked"))
    result = await t.run()
    assert isinstance(result.result("bad_out"), Err)
    assert result.outputs["coerced"] == 12
    bad_in = result.result("bad_in")
    assert isinstance(bad_in, Err)
    assert "ValidationError" in bad_in.record.type
    assert result.outputs["unchecked"] == 3


async def test_skipped_results_are_listed() -> None:
    with Tapestry() as t:
        x = Parameter("x", int)
        Gate(input=x, predicate=lambda v: False, _config=KnotConfig(id="g"))
    result = await t.run(RunRequest(parameters={"x": 1}))
    assert result.skipped == ["g"]
    assert isinstance(result.result("g"), Skipped)


class _FailsToOpen:
    async def __aenter__(self) -> _FailsToOpen:
        raise RuntimeError("cannot connect")

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def emit(self, event: object) -> None:
        raise AssertionError("never opened, never called")


async def test_an_emitter_failing_to_open_does_not_break_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    memory = MemoryEmitter()
    with Tapestry(emitters=[_FailsToOpen(), memory]) as t:
        Parameter("x", int, default=1)
    result = await t.run()
    assert result.succeeded
    assert await t.flush_emitters()
    assert isinstance(memory.events[-1], RunFinished)
    assert "failed to open" in caplog.text


async def test_a_hung_emitter_is_abandoned(monkeypatch: pytest.MonkeyPatch) -> None:
    import pirn_like.engine._emit as emit_module

    monkeypatch.setattr(emit_module, "EMIT_TIMEOUT", 0.05)
    hung_calls = 0

    class Hangs:
        async def __aenter__(self) -> Hangs:
            return self

        async def __aexit__(self, *exc_info: object) -> None:
            return None

        async def emit(self, event: object) -> None:
            nonlocal hung_calls
            hung_calls += 1
            await anyio.sleep_forever()

    memory = MemoryEmitter()
    with Tapestry(emitters=[Hangs(), memory]) as t:
        Parameter("x", int, default=1)
    with anyio.fail_after(5):
        result = await t.run()
        assert await t.flush_emitters()
    assert result.succeeded
    assert hung_calls == 4  # every event reached it, and each was abandoned after the timeout
    assert isinstance(memory.events[-1], RunFinished)


async def test_parameters_are_identified_by_name_and_type() -> None:
    with Tapestry() as t:
        x = Parameter("x", int)
        y = Parameter("y", int)
        z = Parameter("x", str, tapestry=Tapestry())
    assert len({x.config_hash, y.config_hash, z.config_hash}) == 3
    result = await t.run(RunRequest(parameters={"x": 1, "y": 1}))
    assert result.lineage_for("param:x").output_hash == result.lineage_for("param:y").output_hash


async def test_map_item_values_are_kept_in_the_data_store() -> None:
    from pirn_like import InMemoryDataStore, Map

    @knot
    async def square(n: int) -> int:
        return n * n

    data = InMemoryDataStore()
    with Tapestry(data_store=data) as t:
        Map(over=numbers(_config=KnotConfig(id="nums")), each=square, _config=KnotConfig(id="sq"))
    result = await t.run()
    for i, expected in enumerate([1, 4, 9]):
        h = result.lineage_for(f"sq[{i}]").output_hash
        assert h is not None
        assert await data.get(h) == expected


async def test_a_reused_run_id_is_refused() -> None:
    from pirn_like import DuplicateRunError

    with Tapestry() as t:
        Parameter("x", int, default=1)
    await t.run(RunRequest(run_id="run-once"))
    with pytest.raises(DuplicateRunError, match="run id 'run-once' is already recorded"):
        await t.run(RunRequest(run_id="run-once"))
    assert len(await t.history.get_lineage("run-once")) == 1


async def test_custom_dispatcher_needs_only_the_protocol() -> None:
    calls: list[str] = []

    class Recording:
        @property
        def name(self) -> str:
            return "Recording"

        async def __aenter__(self) -> Recording:
            return self

        async def __aexit__(self, *exc_info: object) -> None:
            return None

        async def run(self, call: Any) -> Any:
            calls.append(call.knot_id)
            return await call.target(**call.kwargs)

    @knot
    async def one() -> int:
        return 1

    with Tapestry(dispatcher=Recording()) as t:
        one(_config=KnotConfig(id="one"))
    result = await t.run()
    assert result.outputs["one"] == 1
    assert calls == ["one"]
    assert result.lineage_for("one").dispatcher == "Recording"


async def test_events_and_results_serialize_to_json() -> None:
    from pydantic import TypeAdapter

    from pirn_like import Err, Ok, RunEvent

    memory = MemoryEmitter()
    with Tapestry(emitters=[memory]) as t:
        x = Parameter("x", int)
        Gate(input=x, predicate=lambda v: v > 0, _config=KnotConfig(id="g"))
    await t.run(RunRequest(parameters={"x": 0}))
    assert await t.flush_emitters()
    adapter = TypeAdapter(RunEvent)
    dumped = [adapter.dump_python(e, mode="json") for e in memory.events[:-1]]
    finished = [d for d in dumped if "lineage" in d and d["lineage"]["knot_id"] == "g"]
    assert finished[0]["lineage"]["skip_reason"] == "gate_closed"
    assert TypeAdapter(Ok[int]).dump_python(Ok(3), mode="json") == {"value": 3}
    lineage = next(e.lineage for e in memory.events if isinstance(e, KnotFinished))
    assert TypeAdapter(type(lineage)).validate_python(lineage._asdict()) == lineage
    assert "record" in TypeAdapter(Err).json_schema()["properties"]


async def test_map_items_returning_ok_keep_the_unwrapped_value() -> None:
    from pirn_like import InMemoryDataStore, Map, Ok

    @knot
    async def wrapped(n: int) -> Any:
        return Ok(n * 10)

    data = InMemoryDataStore()
    with Tapestry(data_store=data) as t:
        Map(over=numbers(_config=KnotConfig(id="nums")), each=wrapped, _config=KnotConfig(id="w"))
    result = await t.run()
    assert result.outputs["w"] == [10, 20, 30]
    h = result.lineage_for("w[1]").output_hash
    assert h is not None
    assert await data.get(h) == 20
