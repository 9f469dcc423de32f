"""Prometheus metrics of run_forever: runs, knot durations, failures, retries, emitter queues."""

from __future__ import annotations

from collections import Counter
from typing import Self

import anyio
import httpx
import pytest
from _fixtures_valkey import free_port
from _list_trigger import ListTrigger
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from pirn_like import (
    KnotConfig,
    Map,
    MemoryEmitter,
    Parameter,
    RetryPolicy,
    RunEvent,
    RunOutcome,
    RunRequest,
    Tapestry,
    knot,
)
from pirn_like.triggers import ServiceMetrics, run_forever

pytestmark = pytest.mark.anyio

attempts: Counter[int] = Counter()


@knot
async def flaky(x: int) -> int:
    attempts[x] += 1
    if attempts[x] == 1:
        raise ConnectionError("first try fails")
    return x


@knot
async def checked(x: int) -> int:
    if x == 0:
        raise ValueError("zero")
    return x


class Blocks:
    """Holds the first event it gets until the test ends: its queue fills up."""

    queue_size = 4

    def __init__(self) -> None:
        self.blocked = anyio.Event()
        self.release = anyio.Event()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def emit(self, event: RunEvent) -> None:
        self.blocked.set()
        await self.release.wait()


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_run_forever_serves_run_knot_and_emitter_metrics() -> None:
    attempts.clear()
    blocks = Blocks()
    t = Tapestry(emitters=[blocks, MemoryEmitter()])
    with t:
        x = Parameter("x", int)
        retry = RetryPolicy(attempts=2, initial_delay=0, jitter=0)
        flaky(x=x, _config=KnotConfig(id="flaky", retry=retry))
        checked(x=x, _config=KnotConfig(id="checked"))
    trigger = ListTrigger([RunRequest(parameters={"x": n}) for n in (1, 2, 0)], hold=True)
    port = free_port()
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(
            lambda: run_forever(trigger, t, handle_signals=False, stop=stop, metrics_port=port)
        )
        with anyio.fail_after(20):
            await trigger.wait_until(3)
            await blocks.blocked.wait()
            async with httpx.AsyncClient() as client:
                response = await client.get(f"http://127.0.0.1:{port}/metrics")
        blocks.release.set()
        stop.set()
    assert response.status_code == 200
    got = samples(response.text)

    def value(name: str, **labels: str) -> float:
        return got[(name, frozenset(labels.items()))]

    assert value("pirn_like_runs_total", trigger="list", status="succeeded") == 2
    assert value("pirn_like_runs_total", trigger="list", status="failed") == 1
    assert value("pirn_like_run_duration_seconds_count", trigger="list") == 3
    assert value("pirn_like_knot_duration_seconds_count", knot="flaky") == 3
    assert value("pirn_like_knot_duration_seconds_count", knot="checked") == 3
    assert value("pirn_like_knot_failures_total", knot="checked") == 1
    assert ("pirn_like_knot_failures_total", frozenset({("knot", "flaky")})) not in got
    assert value("pirn_like_knot_retries_total", knot="flaky") == 3  # one per run
    assert value("pirn_like_runs_in_flight", trigger="list") == 0
    # The blocked emitter holds one event and its queue of 4; the other 19 of the
    # 3 runs' 24 events were dropped, and the runs were not held up by it.
    assert value("pirn_like_emitter_queue_depth", emitter="Blocks") == 4
    assert value("pirn_like_emitter_queue_capacity", emitter="Blocks") == 4
    assert value("pirn_like_emitter_events_dropped_total", emitter="Blocks") == 19
    assert value("pirn_like_emitter_queue_capacity", emitter="MemoryEmitter") == 10_000
    assert value("pirn_like_emitter_events_dropped_total", emitter="MemoryEmitter") == 0


def test_emitter_metrics_read_the_queues_at_each_scrape() -> None:
    from pirn_like.engine._emit import EmitterStats

    current = [EmitterStats("log", 3, 10, 7, 1, 0, 2)]
    metrics = ServiceMetrics()
    metrics.watch_emitters(lambda: current)
    first = samples(generate_latest(metrics.registry).decode())
    current = [EmitterStats("log", 0, 10, 12, 1, 1, 2)]
    second = samples(generate_latest(metrics.registry).decode())
    key = ("pirn_like_emitter_queue_depth", frozenset({("emitter", "log")}))
    assert (first[key], second[key]) == (3, 0)
    delivered = ("pirn_like_emitter_events_delivered_total", frozenset({("emitter", "log")}))
    assert (first[delivered], second[delivered]) == (7, 12)


async def test_a_maps_items_count_under_the_map() -> None:
    t = Tapestry()
    with t:
        Map(over=Parameter("xs", list), each=checked, _config=KnotConfig(id="each"))
    result = await t.run(RunRequest(parameters={"xs": [1, 2, 0]}))
    metrics = ServiceMetrics()
    metrics.run_ended("list", RunOutcome(result.run_id, result.status, result))
    got = samples(generate_latest(metrics.registry).decode())
    knots = {dict(labels)["knot"] for name, labels in got if name.startswith("pirn_like_knot_")}
    assert "each" in knots
    assert not any("[" in knot for knot in knots)
    # The failed item and the map it failed count under the map.
    assert got[("pirn_like_knot_failures_total", frozenset({("knot", "each")}))] == 2
    assert got[("pirn_like_knot_duration_seconds_count", frozenset({("knot", "each")}))] == 4
