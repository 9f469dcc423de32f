"""ValKeyTrigger on a real ValKey server: streams at least once (XACK only once the run
is recorded, crashed consumers' entries claimed, dead letters), pub/sub at most once."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Self

import anyio
import pytest
from _serving import serving
from glide import GlideClient, GlideClientConfiguration, MaxId, MinId, NodeAddress

from pirn_like import (
    InMemoryDataStore,
    KnotConfig,
    Parameter,
    RunOutcome,
    RunRequest,
    RunStatus,
    Tapestry,
    knot,
)
from pirn_like.protocols import Delivery
from pirn_like.triggers import ValKeyMessage, ValKeyTrigger

pytestmark = [pytest.mark.anyio, pytest.mark.xdist_group("valkey")]

calls: Counter[int] = Counter()
gates: dict[int, anyio.Event] = {}
started = anyio.Event()


@knot
async def work(n: int) -> int:
    calls[n] += 1
    started.set()
    if n in gates:
        await gates[n].wait()
    if n < 0:
        raise ValueError(f"negative: {n}")
    return n * 10


@pytest.fixture(autouse=True)
def _reset() -> None:
    global started
    calls.clear()
    gates.clear()
    started = anyio.Event()


def _tapestry() -> Tapestry:
    t = Tapestry(data_store=InMemoryDataStore())  # resuming an interrupted run needs values
    with t:
        work(n=Parameter("n", int), _config=KnotConfig(id="work"))
    return t


@asynccontextmanager
async def valkey(url: str) -> AsyncIterator[GlideClient]:
    host, port = url.removeprefix("valkey://").removesuffix("/0").split(":")
    client = await GlideClient.create(GlideClientConfiguration([NodeAddress(host, int(port))]))
    try:
        yield client
    finally:
        await client.close()


async def pending(client: GlideClient, stream: str, group: str = "pirn_like") -> int:
    summary = await client.xpending(stream, group)
    return int(summary[0])  # type: ignore[arg-type]


async def wait_started() -> None:
    with anyio.fail_after(10):
        await started.wait()


async def test_a_stream_entry_runs_and_is_acknowledged_only_once_recorded(
    valkey_url: str, valkey_key_prefix: str
) -> None:
    stream = valkey_key_prefix + "orders"
    gates[7] = anyio.Event()
    async with valkey(valkey_url) as client, _tapestry() as t:
        entry_id = (await client.xadd(stream, [("n", "7")]) or b"").decode()
        async with serving(ValKeyTrigger(valkey_url, stream=stream, consumer="c1"), t) as out:
            await wait_started()
            assert await pending(client, stream) == 1  # running: not acknowledged yet
            gates[7].set()
            (outcome,) = await out.wait_for(1)
            assert await pending(client, stream) == 0
        record = await t.history.get_run(outcome.run_id)
    assert outcome.status is RunStatus.SUCCEEDED
    assert outcome.result is not None
    assert outcome.result.outputs["work"] == 70
    assert outcome.run_id.startswith("valkey-")
    assert record is not None
    assert record.trigger == {
        "kind": "valkey",
        "source": f"stream:{stream}",
        "message_id": entry_id,
        "group": "pirn_like",
    }


async def test_an_entry_left_by_a_crashed_consumer_is_claimed_and_recorded_once(
    valkey_url: str, valkey_key_prefix: str
) -> None:
    stream = valkey_key_prefix + "orders"
    gates[3] = anyio.Event()  # the first consumer never finishes
    async with valkey(valkey_url) as client, _tapestry() as t:
        await client.xadd(stream, [("n", "3")])
        async with serving(ValKeyTrigger(valkey_url, stream=stream, consumer="a"), t):
            await wait_started()
        # Cancelled mid-run: recorded as cancelled, never acknowledged.
        assert await pending(client, stream) == 1
        (interrupted,) = await t.history.list_runs()
        assert interrupted.status is RunStatus.CANCELLED

        gates.clear()
        other = ValKeyTrigger(valkey_url, stream=stream, consumer="b", min_idle=0)
        async with serving(other, t) as out:
            (outcome,) = await out.wait_for(1)
            assert await pending(client, stream) == 0
        runs = await t.history.list_runs()
    assert (outcome.run_id, outcome.status, outcome.duplicate) == (
        interrupted.run_id,
        RunStatus.SUCCEEDED,
        False,
    )
    assert [(r.run_id, r.status) for r in runs] == [(interrupted.run_id, RunStatus.SUCCEEDED)]


@dataclass
class _UnackedDelivery:
    inner: Delivery

    @property
    def request(self) -> RunRequest:
        return self.inner.request

    async def settle(self, outcome: RunOutcome) -> None:
        """The process dies between recording the run and acknowledging the entry."""

    async def release(self) -> None:
        await self.inner.release()


@dataclass
class _CrashBeforeAck:
    inner: ValKeyTrigger
    kind: str = "valkey"

    async def __aenter__(self) -> Self:
        await self.inner.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.inner.__aexit__(*exc_info)

    async def deliveries(self) -> AsyncIterator[_UnackedDelivery]:
        async for delivery in self.inner.deliveries():
            yield _UnackedDelivery(delivery)


async def test_an_entry_whose_run_was_recorded_but_not_acknowledged_does_not_run_again(
    valkey_url: str, valkey_key_prefix: str
) -> None:
    stream = valkey_key_prefix + "orders"
    async with valkey(valkey_url) as client, _tapestry() as t:
        await client.xadd(stream, [("n", "5")])
        first = _CrashBeforeAck(ValKeyTrigger(valkey_url, stream=stream, consumer="a"))
        async with serving(first, t) as out:
            (ran,) = await out.wait_for(1)
        assert await pending(client, stream) == 1
        # The same consumer, restarted: its own pending entries come first, no idle wait.
        again = ValKeyTrigger(valkey_url, stream=stream, consumer="a", min_idle=3600)
        async with serving(again, t) as out:
            (redelivered,) = await out.wait_for(1)
            assert await pending(client, stream) == 0
    assert ran.status is RunStatus.SUCCEEDED
    assert (redelivered.run_id, redelivered.duplicate) == (ran.run_id, True)
    assert calls == Counter({5: 1})


async def test_a_pending_entry_deleted_from_the_stream_is_acknowledged_and_skipped(
    valkey_url: str, valkey_key_prefix: str
) -> None:
    stream = valkey_key_prefix + "orders"
    trigger = ValKeyTrigger(valkey_url, stream=stream, consumer="a")
    async with valkey(valkey_url) as client, _tapestry() as t:
        async with trigger:  # creates the group
            pass
        gone = await client.xadd(stream, [("n", "1")])
        await client.xreadgroup({stream: ">"}, "pirn_like", "a")  # pending with "a"
        await client.xdel(stream, [gone or b""])
        await client.xadd(stream, [("n", "2")])
        async with serving(trigger, t) as out:
            (outcome,) = await out.wait_for(1)
            assert await pending(client, stream) == 0
    assert outcome.result is not None
    assert outcome.result.outputs["work"] == 20
    assert calls == Counter({2: 1})


async def test_failed_and_refused_entries_go_to_the_dead_letter_stream(
    valkey_url: str, valkey_key_prefix: str
) -> None:
    stream, dead = valkey_key_prefix + "orders", valkey_key_prefix + "dead"
    trigger = ValKeyTrigger(valkey_url, stream=stream, dead_letter_stream=dead)
    async with valkey(valkey_url) as client, _tapestry() as t:
        for n in ("-1", "oops", "2"):
            await client.xadd(stream, [("n", n)])
        async with serving(trigger, t) as out:
            outcomes = await out.wait_for(3)
            assert await pending(client, stream) == 0
        letters = await client.xrange(dead, MinId(), MaxId())
    assert sorted(str(o.status) for o in outcomes) == ["None", "failed", "succeeded"]
    assert letters is not None
    fields = [{k.decode(): v.decode() for k, v in pairs} for pairs in letters.values()]
    by_n = {f["n"]: f for f in fields}
    assert sorted(by_n) == ["-1", "oops"]
    assert by_n["-1"]["pirn_like.status"] == "failed"
    assert by_n["-1"]["pirn_like.error"] == "builtins.ValueError: negative: -1"
    assert by_n["oops"]["pirn_like.status"] == "refused"
    assert by_n["oops"]["pirn_like.error"].startswith("ParameterError: parameter 'n'")
    assert by_n["-1"]["pirn_like.source"] == f"stream:{stream}"
    assert by_n["-1"]["pirn_like.run_id"].startswith("valkey-")
    assert by_n["-1"]["pirn_like.message_id"]


async def test_an_entry_the_mapping_rejects_is_dead_lettered_without_running(
    valkey_url: str, valkey_key_prefix: str
) -> None:
    stream, dead = valkey_key_prefix + "orders", valkey_key_prefix + "dead"

    def parameters(message: ValKeyMessage) -> dict[str, object]:
        return {"n": int(message.fields["amount"]) // 100}

    trigger = ValKeyTrigger(
        valkey_url, stream=stream, dead_letter_stream=dead, parameters=parameters
    )
    async with valkey(valkey_url) as client, _tapestry() as t:
        await client.xadd(stream, [("wrong", "1")])
        await client.xadd(stream, [("amount", "400")])
        async with serving(trigger, t) as out:
            (outcome,) = await out.wait_for(1)
            assert await pending(client, stream) == 0
        letters = await client.xrange(dead, MinId(), MaxId())
    assert outcome.result is not None
    assert outcome.result.outputs["work"] == 40
    assert letters is not None
    (letter,) = [{k.decode(): v.decode() for k, v in pairs} for pairs in letters.values()]
    assert letter["wrong"] == "1"
    assert letter["pirn_like.error"] == "KeyError: 'amount'"
    assert calls == Counter({4: 1})


async def _wait_subscribed(client: GlideClient, channel: str) -> None:
    with anyio.fail_after(10):
        while (await client.pubsub_numsub([channel])).get(channel.encode(), 0) < 1:  # noqa: ASYNC110
            await anyio.sleep(0.01)  # server state: no event to wait on


async def test_a_pubsub_message_runs(valkey_url: str, valkey_key_prefix: str) -> None:
    channel = valkey_key_prefix + "events"
    async with valkey(valkey_url) as client, _tapestry() as t:
        async with serving(ValKeyTrigger(valkey_url, channel=channel), t) as out:
            await _wait_subscribed(client, channel)
            for message in ('{"n": 1}', "not json", '{"n": 2}'):
                await client.publish(message, channel)
            outcomes = await out.wait_for(2)
        records = [await t.history.get_run(o.run_id) for o in outcomes]
    assert [o.result.outputs["work"] for o in outcomes if o.result] == [10, 20]
    assert [r.trigger if r else None for r in records] == [
        {"kind": "valkey", "source": f"channel:{channel}"}
    ] * 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one of channel="),
        ({"channel": "a", "stream": "b"}, "exactly one of channel="),
        ({"stream": "b", "min_idle": -1}, "min_idle must be"),
        ({"stream": "b", "block": 0}, "block must be a positive"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ValKeyTrigger("valkey://127.0.0.1:6379", **kwargs)


def test_a_url_that_is_not_valkey_is_refused_with_the_password_hidden() -> None:
    with pytest.raises(ValueError, match="is not a ValKey URL") as caught:
        ValKeyTrigger("http://user:secret@host:1", stream="s")
    assert "secret" not in str(caught.value)
