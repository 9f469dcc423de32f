"""WebhookEmitter against a real local receiver (Starlette on uvicorn, asyncio only):
signed bodies that verify, retries on 5xx but not 4xx, the failure filter, and a
receiver that hangs or is down never failing a run."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest
from _fixtures_valkey import free_port
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pirn_like import (
    ClosedResourceError,
    KnotConfig,
    Parameter,
    RunFinished,
    RunRequest,
    RunResult,
    RunStarted,
    RunStatus,
    Signature,
    Tapestry,
    knot,
)
from pirn_like.emitters import WebhookEmitter
from pirn_like.triggers._serve_asgi import serve_asgi

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["asyncio"])]


@knot
async def check(x: int) -> int:
    if x < 0:
        raise ValueError(f"negative: {x}")
    return x * 2


def _tapestry(*emitters: WebhookEmitter) -> Tapestry:
    t = Tapestry(emitters=emitters)
    with t:
        check(x=Parameter("x", int), _config=KnotConfig(id="check"))
    return t


class Receiver:
    """Records every request; can answer 503 at first, answer ``status``, or hang."""

    def __init__(self) -> None:
        self.requests: list[tuple[httpx.Headers, bytes]] = []
        self.fail_first = 0
        self.status = 200
        self.hang = False
        self.release = anyio.Event()
        self.url = ""
        self._changed = anyio.Event()

    async def hook(self, request: Request) -> Response:
        self.requests.append((httpx.Headers(request.headers.items()), await request.body()))
        self._changed.set()
        if self.hang:
            await self.release.wait()
        if len(self.requests) <= self.fail_first:
            return Response(status_code=503)
        return Response(status_code=self.status)

    async def wait_for(self, n: int) -> list[dict[str, Any]]:
        with anyio.fail_after(10):
            while len(self.requests) < n:
                self._changed = anyio.Event()
                await self._changed.wait()
        return [json.loads(body) for _, body in self.requests]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    app = Starlette(routes=[Route("/hook", r.hook, methods=["POST"])])
    async with serve_asgi(app, host="127.0.0.1", port=0, name="receiver") as port:
        r.url = f"http://127.0.0.1:{port}/hook"
        try:
            yield r
        finally:
            r.release.set()  # let hanging handlers finish so the server can stop


async def _result(x: int, *emitters: WebhookEmitter) -> RunResult:
    t = _tapestry(*emitters)
    async with t:
        return await t.run(RunRequest(parameters={"x": x}))


async def test_finished_runs_are_posted_signed_and_the_signature_verifies(
    receiver: Receiver,
) -> None:
    result = await _result(2, WebhookEmitter(receiver.url, secret="alert-secret"))
    (body,) = await receiver.wait_for(1)
    headers, raw = receiver.requests[0]
    Signature("alert-secret").verify(headers, raw)
    assert body["event"] == "run_finished"
    assert body["run_id"] == result.run_id
    assert body["status"] == "succeeded"
    assert "outputs" not in body  # hashes and statuses only, never values
    assert headers["content-type"] == "application/json"
    assert len(headers["idempotency-key"]) == 32


async def test_other_signature_presets_verify_too(receiver: Receiver) -> None:
    github = Signature("gh-secret", "github")
    await _result(1, WebhookEmitter(receiver.url, secret=github))
    await receiver.wait_for(1)
    headers, raw = receiver.requests[0]
    assert headers["x-hub-signature-256"].startswith("sha256=")
    github.verify(headers, raw)


async def test_a_503_is_retried_with_the_same_idempotency_key(receiver: Receiver) -> None:
    receiver.fail_first = 2
    result = await _result(3, WebhookEmitter(receiver.url, secret="s", retries=3, backoff=0))
    bodies = await receiver.wait_for(3)
    assert result.succeeded
    assert [b["run_id"] for b in bodies] == [result.run_id] * 3
    assert len({h["idempotency-key"] for h, _ in receiver.requests}) == 1
    for headers, raw in receiver.requests:  # each attempt is signed afresh
        Signature("s").verify(headers, raw)


async def test_a_4xx_is_not_retried_and_is_raised_to_the_engine(receiver: Receiver) -> None:
    receiver.status = 400
    result = await _result(4)
    async with WebhookEmitter(receiver.url, retries=3, backoff=0) as emitter:
        with pytest.raises(httpx.HTTPStatusError, match="answered 400"):
            await emitter.emit(RunFinished(result))
    assert len(receiver.requests) == 1


async def test_only_failures_makes_an_alerter(receiver: Receiver) -> None:
    alerter = WebhookEmitter(
        receiver.url, events=("knot_finished", RunFinished), only_failures=True
    )
    t = _tapestry(alerter)
    async with t:
        ok = await t.run(RunRequest(parameters={"x": 1}))
        failed = await t.run(RunRequest(parameters={"x": -1}))
        # One emitter's events go out in order: had the good run's been sent, they
        # would have arrived first.
        bodies = await receiver.wait_for(2)
    assert ok.succeeded
    assert failed.status is RunStatus.FAILED
    assert [(b["event"], b["run_id"]) for b in bodies] == [
        ("knot_finished", failed.run_id),
        ("run_finished", failed.run_id),
    ]
    assert bodies[1]["errors"][0]["message"] == "negative: -1"


async def test_events_may_be_chosen_by_a_predicate(receiver: Receiver) -> None:
    result = await _result(
        5, WebhookEmitter(receiver.url, events=lambda e: isinstance(e, RunStarted))
    )
    (body,) = await receiver.wait_for(1)
    assert (body["event"], body["run_id"]) == ("run_started", result.run_id)


async def test_a_hanging_receiver_never_fails_the_run(receiver: Receiver) -> None:
    receiver.hang = True
    emitter = WebhookEmitter(receiver.url, timeout=0.2, retries=1, backoff=0)
    result = await _result(6, emitter)  # closing the tapestry drains the emitter
    assert result.succeeded
    assert len(receiver.requests) == 2  # the first attempt and one retry, both timed out


async def test_a_receiver_that_is_down_never_fails_the_run() -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"
    result = await _result(7, WebhookEmitter(url, retries=2, backoff=0))
    assert result.succeeded
    async with WebhookEmitter(url, retries=2, backoff=0) as emitter:
        with pytest.raises(httpx.ConnectError):
            await emitter.emit(RunFinished(result))


async def test_an_unopened_emitter_says_so() -> None:
    with pytest.raises(ClosedResourceError, match="not open"):
        await WebhookEmitter("http://127.0.0.1:1/hook").emit(RunFinished(await _result(1)))


async def test_bad_arguments_are_refused_naming_them() -> None:
    with pytest.raises(ValueError, match="http"):
        WebhookEmitter("ftp://example.org")
    with pytest.raises(ValueError, match="unknown event 'run_done'"):
        WebhookEmitter("http://x", events=("run_done",))
    with pytest.raises(ValueError, match="timeout"):
        WebhookEmitter("http://x", timeout=0)
