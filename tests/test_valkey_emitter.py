"""ValKeyEmitter on a real ValKey server: a capped stream, or a pub/sub channel."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import glide
import pytest

from pirn_like import KnotConfig, Parameter, RunRequest, Tapestry, ValKeyEmitter, knot
from pirn_like.backends._valkey import ValKeyServer, parse_valkey_url

pytestmark = pytest.mark.anyio


@knot
async def double(x: int) -> int:
    return x * 2


def build(emitter: ValKeyEmitter) -> Tapestry:
    with Tapestry(emitters=[emitter]) as t:
        d = double(x=Parameter("x", int), _config=KnotConfig(id="d"))
        double(x=d, _config=KnotConfig(id="dd"))
    return t


@asynccontextmanager
async def connected(url: str, subscriptions: Any = None) -> AsyncIterator[glide.GlideClient]:
    server = ValKeyServer(**parse_valkey_url(url), timeout=10.0)
    client = await glide.GlideClient.create(server.client_config(subscriptions))
    try:
        yield client
    finally:
        await client.close()


async def test_events_are_added_to_a_stream(valkey_url: str, valkey_key_prefix: str) -> None:
    stream = f"{valkey_key_prefix}events"
    async with build(ValKeyEmitter(valkey_url, stream=stream, with_payload=True)) as t:
        result = await t.run(RunRequest(parameters={"x": 5}))
        assert await t.flush_emitters()
    async with connected(valkey_url) as client:
        entries = await client.xrange(stream, glide.MinId(), glide.MaxId())
    assert entries is not None
    rows = [{k.decode(): v.decode() for k, v in fields} for fields in entries.values()]
    assert next(r["event"] for r in rows) == "run_started"
    assert [r["event"] for r in rows][-1] == "run_finished"
    assert {r["run_id"] for r in rows} == {result.run_id}
    finished = {r["knot_id"]: json.loads(r["data"]) for r in rows if r["event"] == "knot_finished"}
    assert set(finished) == {"param:x", "d", "dd"}
    for knot_id, data in finished.items():
        rec = result.lineage_for(knot_id)
        assert data["output_hash"] == rec.output_hash
        assert data["input_hashes"] == dict(rec.parent_input_hashes)
        assert data["outcome"] == "ok"
    assert finished["dd"]["value"] == 20  # with_payload
    run_end = json.loads(rows[-1]["data"])
    assert run_end["status"] == "succeeded"
    assert run_end["outputs"]["dd"] == 20


async def test_the_stream_is_capped_near_maxlen(valkey_url: str, valkey_key_prefix: str) -> None:
    stream = f"{valkey_key_prefix}capped"
    runs = 40  # 8 events each: well past one stream node (100 entries), so trimming happens
    async with build(ValKeyEmitter(valkey_url, stream=stream, maxlen=10)) as t:
        for n in range(runs):
            await t.run(RunRequest(parameters={"x": n}))
        assert await t.flush_emitters()
        (stats,) = t.emitter_stats()
        assert stats.delivered == runs * 8
    async with connected(valkey_url) as client:
        length = await client.xlen(stream)
    assert 10 <= length < runs * 8


async def test_events_are_published_to_a_channel(valkey_url: str, valkey_key_prefix: str) -> None:
    channel = f"{valkey_key_prefix}runs"
    modes = glide.GlideClientConfiguration.PubSubChannelModes
    subscriptions = glide.GlideClientConfiguration.PubSubSubscriptions(
        channels_and_patterns={modes.Exact: {channel}}, callback=None, context=None
    )
    emitter = ValKeyEmitter(valkey_url, channel=channel)
    async with connected(valkey_url, subscriptions) as subscriber, build(emitter) as t:
        result = await t.run(RunRequest(parameters={"x": 1}))
        received: list[dict[str, Any]] = []
        with anyio.fail_after(10):
            while not received or received[-1]["event"] != "run_finished":
                message = await subscriber.get_pubsub_message()
                received.append(json.loads(message.message))
    assert received[0]["event"] == "run_started"
    assert {m["run_id"] for m in received} == {result.run_id}
    assert len(received) == 8
    assert "value" not in received[-2]  # no payload unless asked


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="a stream or a channel, not both"):
        ValKeyEmitter(stream="s", channel="c")
    with pytest.raises(ValueError, match="maxlen must be a positive number"):
        ValKeyEmitter(maxlen=0)
    with pytest.raises(ValueError, match="is not a ValKey URL"):
        ValKeyEmitter("http://example.com")
    secret = ValKeyEmitter("valkey://user:hunter2@cache:6380/1")
    assert "hunter2" not in repr(secret)
