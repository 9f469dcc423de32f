"""CeleryDispatcher: every knot runs as a Celery task on real ``celery worker`` processes.

Broker and result backend are the session's ValKey server. Knots report their pool
process's pid over a TCP connection they hold open until they end
(``_dispatch_knots.Reporter``), so a test learns a pid as an event and sees
end-of-stream the moment that process dies.
"""

from __future__ import annotations

import base64
import json
import os
import signal
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread
import numpy as np
import pytest
import redis
from _dispatch_checks import (
    assert_remote_value_error,
    check_killed_worker_is_retried,
    check_knots_run_remotely,
    check_large_values_travel_by_reference,
    check_refuses_work_unopened_or_closed,
    check_retry_policy_retries,
    check_timeout_kills_the_knot,
    run_failing_knots,
    run_killing_the_worker,
)
from _dispatch_knots import (
    Reporter,
    accept_reporter,
    add,
    die_on_first_attempt,
    listening,
    report_then_mark,
    run_alongside,
)
from _fixtures_valkey import free_port
from _polling import wait_until
from celery import Celery

from pirn_like import (
    BackendError,
    Err,
    KnotConfig,
    KnotId,
    Parameter,
    RunId,
    RunRequest,
    RunStatus,
    Tapestry,
    UntrustedPayloadError,
    knot,
    register_codec,
)
from pirn_like.dispatchers._celery import TASK_NAME, CeleryDispatcher
from pirn_like.dispatchers._remote import RemoteOptions, pack_call, unpack_result
from pirn_like.protocols import KnotCall

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from _fixtures_celery import CeleryWorker


pytestmark = [
    pytest.mark.anyio,
    pytest.mark.xdist_group("celery"),
    pytest.mark.usefixtures("celery_worker"),
]


async def test_knots_run_on_celery_workers_and_lineage_names_the_dispatcher(
    celery_app: Celery,
) -> None:
    await check_knots_run_remotely(CeleryDispatcher(celery_app), "CeleryDispatcher")


async def test_knot_failure_comes_back_with_remote_type_message_and_traceback(
    celery_app: Celery,
) -> None:
    result = await run_failing_knots(CeleryDispatcher(celery_app), unimportable=False)
    assert isinstance(result.result("boom"), Err)
    (record,) = result.exceptions
    assert_remote_value_error(record)
    assert "_dispatch_knots.py" in record.traceback
    assert result.lineage_for("boom").dispatcher == "CeleryDispatcher"


async def test_retry_policy_retries_a_remote_knot(celery_app: Celery, tmp_path: Path) -> None:
    # Celery itself retries nothing.
    await check_retry_policy_retries(CeleryDispatcher(celery_app), tmp_path)


async def test_timeout_revokes_and_kills_the_remote_knot(
    celery_app: Celery, tmp_path: Path
) -> None:
    await check_timeout_kills_the_knot(CeleryDispatcher(celery_app), tmp_path, timeout=1)


async def test_cancelled_run_revokes_and_kills_the_remote_knot(
    celery_app: Celery, tmp_path: Path
) -> None:
    marker = tmp_path / "finished"
    async with (
        listening() as (port, listener),
        Tapestry(dispatcher=CeleryDispatcher(celery_app)) as t,
    ):
        report_then_mark(port=port, seconds=20, marker=str(marker), _config=KnotConfig(id="s"))
        reporter: Reporter | None = None
        with anyio.fail_after(15):
            with anyio.CancelScope() as scope:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(t.run, RunRequest(run_id="run-celery-cancel"))
                    reporter = await accept_reporter(listener)
                    await reporter.pid()
                    scope.cancel()
            assert reporter is not None
            await reporter.closed()
    assert scope.cancelled_caught
    assert not marker.exists()
    run = await t.history.get_run("run-celery-cancel")
    assert run is not None
    assert run.status is RunStatus.CANCELLED


async def test_killed_pool_process_fails_the_knot_with_worker_lost(
    celery_app: Celery, tmp_path: Path
) -> None:
    record = await run_killing_the_worker(CeleryDispatcher(celery_app), tmp_path)
    assert "running knot 'victim'" in record.message
    assert "died: Worker exited prematurely: signal 9 (SIGKILL)" in record.message


async def test_killed_pool_process_is_retried_per_policy(
    celery_app: Celery, tmp_path: Path
) -> None:
    await check_killed_worker_is_retried(CeleryDispatcher(celery_app), tmp_path)


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_a_worker_killed_whole_is_noticed_by_its_missing_heartbeat(
    celery_app: Celery,
    start_celery_worker: Callable[..., AbstractContextManager[CeleryWorker]],
    tmp_path: Path,
) -> None:
    with start_celery_worker(queue="doomed", concurrency=1) as worker:
        dispatcher = CeleryDispatcher(celery_app, queue=worker.queue, heartbeat=0.2)
        async with listening() as (port, listener), Tapestry(dispatcher=dispatcher) as t:
            die_on_first_attempt(
                port=port, counter=str(tmp_path / "attempts"), _config=KnotConfig(id="victim")
            )
            with anyio.fail_after(30):
                result = await run_alongside(t, partial(_kill_whole_worker, worker, listener))
    failure = result.result("victim")
    assert isinstance(failure, Err)
    assert failure.record.type == "pirn_like.WorkerLostError"
    assert f"worker {worker.hostname} (pid " in failure.record.message
    assert "died: no heartbeat for" in failure.record.message


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_long_knot_keeps_beating_and_is_not_taken_for_lost(
    celery_app: Celery, tmp_path: Path
) -> None:
    marker = tmp_path / "finished"
    dispatcher = CeleryDispatcher(celery_app, heartbeat=0.1)  # lost after 0.3 s of silence
    async with listening() as (port, _), Tapestry(dispatcher=dispatcher) as t:
        report_then_mark(port=port, seconds=1.5, marker=str(marker), _config=KnotConfig(id="s"))
        with anyio.fail_after(30):
            result = await t.run()
    assert result.outputs["s"] == "finished"
    assert marker.exists()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_heartbeats_live_under_their_own_key_which_goes_when_the_knot_ends(
    celery_app: Celery, tmp_path: Path
) -> None:
    client = celery_app.backend.client
    earlier = set(await anyio.to_thread.run_sync(client.keys, "pirn-like-beat-*"))
    # (A worker killed whole by another test leaves its key until the key's TTL.)

    async def new_beat_keys() -> set[bytes]:
        return set(await anyio.to_thread.run_sync(client.keys, "pirn-like-beat-*")) - earlier

    async def beating() -> bool:
        return bool(await new_beat_keys())

    async def gone() -> bool:
        return not await new_beat_keys()

    async def while_it_runs(listener: anyio.abc.SocketListener) -> None:
        reporter = await accept_reporter(listener)
        await reporter.pid()  # the knot runs
        await wait_until(beating, deadline=10)

    dispatcher = CeleryDispatcher(celery_app, heartbeat=0.1)
    async with listening() as (port, listener), Tapestry(dispatcher=dispatcher) as t:
        marker = str(tmp_path / "finished")
        report_then_mark(port=port, seconds=1.0, marker=marker, _config=KnotConfig(id="s"))
        with anyio.fail_after(30):
            result = await run_alongside(t, partial(while_it_runs, listener))
    assert result.outputs["s"] == "finished"
    await wait_until(gone, deadline=10)  # the beat thread deletes its key once the knot ends


async def _kill_whole_worker(worker: CeleryWorker, listener: anyio.abc.SocketListener) -> None:
    """Kill the worker and its pool once the knot runs: nobody is left to report it."""
    reporter = await accept_reporter(listener)
    await reporter.pid()
    os.killpg(worker.process.pid, signal.SIGKILL)
    await reporter.closed()


async def test_large_values_travel_by_reference(celery_app: Celery, tmp_path: Path) -> None:
    def make(store_url: str) -> CeleryDispatcher:
        options = RemoteOptions(code="reference", data_store_url=store_url)
        return CeleryDispatcher(celery_app, options=options)

    n = 200_000  # 1.6 MB of float64
    result = await check_large_values_travel_by_reference(make, tmp_path, n)
    np.testing.assert_array_equal(result.outputs["values"], np.arange(n, dtype=np.float64))


async def test_task_messages_on_the_broker_are_json(celery_app: Celery) -> None:
    queue = "nobody-listens"
    dispatcher = CeleryDispatcher(celery_app, queue=queue)
    async with Tapestry(dispatcher=dispatcher) as t:
        add(a=1, b=2, _config=KnotConfig(id="sum", timeout=0.5))
        with anyio.fail_after(15):
            result = await t.run()
    failure = result.result("sum")
    assert isinstance(failure, Err)
    assert failure.record.type == "pirn_like.KnotTimeoutError"
    (raw,) = await anyio.to_thread.run_sync(_take_messages, celery_app, queue)
    envelope = json.loads(raw)
    assert envelope["content-type"] == "application/json"
    assert envelope["headers"]["task"] == TASK_NAME
    args, kwargs, _ = json.loads(base64.b64decode(envelope["body"]))
    (payload,) = args
    assert kwargs == {"heartbeat": dispatcher.heartbeat}
    # The payload is text inside the JSON; the code travels as an import path.
    assert b'"target":"_dispatch_knots:add"' in base64.b64decode(payload, validate=True)
    assert celery_app.conf.task_serializer == "json"


async def test_an_unsendable_input_fails_on_the_caller_without_pickling(
    celery_app: Celery,
) -> None:
    queue = "nobody-listens-either"
    async with Tapestry(dispatcher=CeleryDispatcher(celery_app, queue=queue)) as t:
        add(a=Parameter("value"), b=1, _config=KnotConfig(id="add"))
        with anyio.fail_after(15):
            result = await t.run(RunRequest(parameters={"value": _Opaque()}))
    failure = result.result("add")
    assert isinstance(failure, Err)
    assert failure.record.type == "pirn_like.SerializationError"
    assert "input 'a' cannot be sent between processes" in failure.record.message
    assert await anyio.to_thread.run_sync(_take_messages, celery_app, queue) == []


class _Opaque:
    """Content-hashable (a codec below), but no serializer format takes it."""


register_codec(_Opaque, reduce=lambda value: "opaque")


def _take_messages(app: Celery, queue: str) -> list[bytes]:
    """Remove and return the raw messages kombu queued in ValKey for ``queue``."""
    client = redis.Redis.from_url(str(app.conf.broker_url))
    try:
        with client.pipeline() as pipe:
            pipe.lrange(queue, 0, -1)
            pipe.delete(queue)
            messages, _ = pipe.execute()
    finally:
        client.close()
    return messages


async def test_signed_pickled_code_runs_on_a_worker_with_the_key(
    celery_app: Celery, celery_signed_worker: CeleryWorker
) -> None:
    offset = 40

    @knot
    def add_offset(x: int) -> int:  # a closure: it can only travel pickled
        return x + offset

    options = RemoteOptions(code="pickle", pickle_key=celery_signed_worker.pickle_key)
    dispatcher = CeleryDispatcher(celery_app, options=options, queue=celery_signed_worker.queue)
    async with Tapestry(dispatcher=dispatcher) as t:
        add_offset(x=2, _config=KnotConfig(id="sum"))
        with anyio.fail_after(30):
            result = await t.run()
    assert result.outputs["sum"] == 42


async def test_a_payload_signed_with_another_key_is_refused(
    celery_app: Celery, celery_signed_worker: CeleryWorker, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    options = RemoteOptions(code="pickle", pickle_key=b"some-other-key-0123456789")
    dispatcher = CeleryDispatcher(celery_app, options=options, queue=celery_signed_worker.queue)
    async with Tapestry(dispatcher=dispatcher) as t:
        _writes(marker)(_config=KnotConfig(id="w"))
        with anyio.fail_after(30):
            result = await t.run()
    failure = result.result("w")
    assert isinstance(failure, Err)
    assert failure.record.type == "pirn_like.UntrustedPayloadError"
    assert "signature does not match" in failure.record.message
    assert not marker.exists()


async def test_a_tampered_payload_is_refused(
    celery_app: Celery, celery_signed_worker: CeleryWorker, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    options = RemoteOptions(code="pickle", pickle_key=celery_signed_worker.pickle_key)
    payload = bytearray(await pack_call(_call_writing(marker), options))
    payload[-1] ^= 0x01
    result = await _send_raw(celery_app, bytes(payload), celery_signed_worker.queue)
    assert isinstance(result, str)  # the worker's refusal travels in the result, as a failure
    with pytest.raises(UntrustedPayloadError, match="signature does not match"):
        await unpack_result(base64.b64decode(result), options)
    assert not marker.exists()


async def test_a_worker_without_a_key_refuses_unsigned_pickled_code(
    celery_app: Celery, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    options = RemoteOptions(code="pickle")
    payload = await pack_call(_call_writing(marker), options)
    refusal = await _send_raw(celery_app, payload, "celery")
    assert isinstance(refusal, str)  # the worker's refusal travels in the result, as a failure
    with pytest.raises(UntrustedPayloadError, match="no pickle key to check a signature with"):
        await unpack_result(base64.b64decode(refusal), options)
    assert not marker.exists()


def _writes(marker: Path) -> type:
    @knot
    def write() -> str:
        marker.write_text("ran")
        return "ran"

    return write


def _call_writing(marker: Path) -> KnotCall:
    def write() -> str:
        marker.write_text("ran")
        return "ran"

    return KnotCall(RunId("raw"), KnotId("w"), target=write, kwargs={}, is_async=False)


async def _send_raw(app: Celery, payload: bytes, queue: str) -> object:
    """What the task returns for ``payload`` sent as is (its exception if it fails)."""

    def send_and_wait() -> object:
        sent = app.send_task(TASK_NAME, args=(base64.b64encode(payload).decode(),), queue=queue)
        try:
            return sent.get(timeout=20, propagate=False)
        finally:
            sent.forget()

    return await anyio.to_thread.run_sync(send_and_wait)


def test_pickled_code_without_a_key_is_refused_at_construction(celery_app: Celery) -> None:
    with pytest.raises(ValueError, match=r"cloudpickled code only signed.*pickle_key="):
        CeleryDispatcher(celery_app, options=RemoteOptions(code="pickle"))
    with pytest.raises(ValueError, match=r"custom serializer travels .* pickled"):
        CeleryDispatcher(celery_app, options=RemoteOptions(code="reference", serializer=_Json()))


class _Json:
    def dumps(self, value: object) -> bytes:
        return json.dumps(value).encode()

    def loads(self, data: bytes) -> object:
        return json.loads(data)


async def test_unopened_or_closed_dispatcher_refuses_work(celery_app: Celery) -> None:
    await check_refuses_work_unopened_or_closed(CeleryDispatcher(celery_app))


async def test_an_unreachable_broker_fails_at_open_with_the_url_redacted() -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    app = Celery("unreachable", broker=url, backend=url)
    with pytest.raises(BackendError, match=r"cannot reach the broker redis://:\*\*\*@") as caught:
        async with CeleryDispatcher(app):
            pass
    assert "hunter2" not in str(caught.value)
