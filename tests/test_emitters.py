"""Emitter delivery across runs and event loops, and LogEmitter's structured records."""

from __future__ import annotations

import json
import logging
from typing import Self

import anyio
import pytest

from pirn_like import (
    JsonLogFormatter,
    KnotConfig,
    KnotFinished,
    KnotStarted,
    LogEmitter,
    MemoryEmitter,
    Parameter,
    RunEvent,
    RunFinished,
    RunRequest,
    RunStarted,
    Tapestry,
    knot,
)

EVENTS_PER_RUN = 6  # RunStarted, 2 x (KnotStarted, KnotFinished), RunFinished


@knot
async def double(x: int) -> int:
    return x * 2


@knot
async def explode(x: int) -> int:
    raise ValueError(f"cannot take {x}")


def build(*emitters: object) -> Tapestry:
    with Tapestry(emitters=list(emitters)) as t:  # type: ignore[arg-type]
        double(x=Parameter("x", int), _config=KnotConfig(id="d"))
    return t


class Gated:
    """Waits for ``gate`` before taking each event."""

    def __init__(self) -> None:
        self.gate = anyio.Event()
        self.events: list[RunEvent] = []

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def emit(self, event: RunEvent) -> None:
        await self.gate.wait()
        self.events.append(event)


@pytest.mark.anyio
async def test_each_emitter_gets_each_runs_events_in_order() -> None:
    memory = MemoryEmitter()
    async with build(memory) as t:
        async with anyio.create_task_group() as tg:
            for n in range(5):
                tg.start_soon(t.run, RunRequest(parameters={"x": n}))
        assert await t.flush_emitters()
    assert len(memory.events) == 5 * EVENTS_PER_RUN
    by_run: dict[str, list[str]] = {}
    for event in memory.events:
        match event:
            case RunStarted(run=record):
                by_run.setdefault(record.run_id, []).append("RunStarted")
            case KnotStarted(run_id=run_id):
                by_run.setdefault(run_id, []).append("KnotStarted")
            case KnotFinished(lineage=lineage):
                by_run.setdefault(lineage.run_id, []).append("KnotFinished")
            case RunFinished(result=result):
                by_run.setdefault(result.run_id, []).append("RunFinished")
    for kinds in by_run.values():
        assert kinds[0] == "RunStarted"
        assert kinds[-1] == "RunFinished"
        assert len(kinds) == EVENTS_PER_RUN


@pytest.mark.anyio
async def test_closing_delivers_what_is_still_queued() -> None:
    gated = Gated()
    t = build(gated)
    await t.run(RunRequest(parameters={"x": 1}))
    assert gated.events == []  # the run did not wait for its emitter
    async with anyio.create_task_group() as tg:
        tg.start_soon(t.aclose)
        gated.gate.set()
    assert len(gated.events) == EVENTS_PER_RUN
    assert isinstance(gated.events[-1], RunFinished)


@pytest.mark.anyio
async def test_repeated_emitter_names_are_numbered() -> None:
    async with build(MemoryEmitter(), MemoryEmitter()) as t:
        await t.run(RunRequest(parameters={"x": 1}))
        assert await t.flush_emitters()
        stats = t.emitter_stats()
    assert [s.name for s in stats] == ["MemoryEmitter", "MemoryEmitter#2"]
    assert [s.delivered for s in stats] == [EVENTS_PER_RUN, EVENTS_PER_RUN]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_tapestry_keeps_delivering_across_event_loops(backend: str) -> None:
    # An un-entered tapestry opens on its first run and stays open: each anyio.run
    # (asyncio.run, trio.run) gets its own delivery task, and nothing queued is lost.
    memory = MemoryEmitter()
    t = build(memory)
    for n in range(3):
        anyio.run(t.run, RunRequest(parameters={"x": n}), backend=backend)
    assert anyio.run(t.flush_emitters, backend=backend)
    assert len(memory.events) == 3 * EVENTS_PER_RUN
    anyio.run(t.run, RunRequest(parameters={"x": 9}), backend=backend)
    anyio.run(t.aclose, backend=backend)
    assert len(memory.events) == 4 * EVENTS_PER_RUN
    assert isinstance(memory.events[-1], RunFinished)


# -- LogEmitter ----------------------------------------------------------------


def _records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "pirn_like.runs"]


@pytest.mark.anyio
async def test_log_emitter_logs_one_structured_record_per_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "pirn_like.runs")
    async with build(LogEmitter(with_payload=False)) as t:
        result = await t.run(RunRequest(parameters={"x": 21}))
        assert await t.flush_emitters()
    records = _records(caplog)
    assert [r.__dict__["event"] for r in records] == [
        "run_started",
        "knot_started",
        "knot_finished",
        "knot_started",
        "knot_finished",
        "run_finished",
    ]
    assert {r.__dict__["run_id"] for r in records} == {result.run_id}
    finished = {
        r.__dict__["knot_id"]: r.__dict__ for r in records if r.__dict__["event"] == "knot_finished"
    }
    rec = result.lineage_for("d")
    assert finished["d"]["outcome"] == "ok"
    assert finished["d"]["output_hash"] == rec.output_hash
    assert finished["d"]["input_hashes"] == {"x": result.lineage_for("param:x").output_hash}
    assert finished["d"]["config_hash"] == rec.knot_config_hash
    assert finished["d"]["duration_s"] == rec.duration
    assert "value" not in finished["d"]  # no values without with_payload
    assert records[-1].getMessage().startswith(f"run {result.run_id} succeeded in ")
    assert all(r.levelno == logging.INFO for r in records)


@pytest.mark.anyio
async def test_log_emitter_payloads_failures_and_json(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, "pirn_like.runs")
    with Tapestry(emitters=[LogEmitter(with_payload=True, level=logging.DEBUG)]) as t:
        x = Parameter("x", int)
        double(x=x, _config=KnotConfig(id="d"))
        explode(x=x, _config=KnotConfig(id="boom"))
    async with t:
        result = await t.run(RunRequest(parameters={"x": 4}))
        assert await t.flush_emitters()
    records = _records(caplog)
    by_knot = {
        r.__dict__.get("knot_id"): r for r in records if r.__dict__["event"] == "knot_finished"
    }
    assert by_knot["d"].__dict__["value"] == 8
    assert by_knot["d"].levelno == logging.DEBUG
    assert by_knot["boom"].levelno == logging.WARNING  # failures stand out
    assert by_knot["boom"].__dict__["error_id"] == result.exceptions[0].id
    run_end = records[-1]
    assert run_end.levelno == logging.WARNING
    assert run_end.__dict__["outputs"]["d"] == 8
    assert run_end.__dict__["errors"][0]["message"] == "cannot take 4"
    line = json.loads(JsonLogFormatter().format(run_end))
    assert line["level"] == "WARNING"
    assert line["logger"] == "pirn_like.runs"
    assert line["run_id"] == result.run_id
    assert line["status"] == "failed"
    assert line["outputs"] == {"param:x": 4, "d": 8}
    assert line["message"] == run_end.getMessage()


def test_json_formatter_works_for_any_record() -> None:
    logger = logging.getLogger("test_emitters.json")
    record = logger.makeRecord(
        logger.name, logging.ERROR, __file__, 1, "disk %s", ("full",), None, extra={"obj": object()}
    )
    line = json.loads(JsonLogFormatter().format(record))
    assert line["message"] == "disk full"
    assert line["obj"].startswith("<object object")  # what JSON cannot carry: its repr
    assert "args" not in line
    assert "msg" not in line
