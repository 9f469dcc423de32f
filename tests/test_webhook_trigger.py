"""WebhookTrigger: authenticated POSTs become recorded runs, with every refusal explained.

Tests marked ``ON_UVICORN`` go through the real uvicorn server the trigger starts
(asyncio only); the others call ``trigger.app`` in process on asyncio and trio.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import anyio
import httpx
import pytest
from _webhook_helpers import (
    AUTH,
    TOKEN,
    asgi_client,
    calls,
    gates,
    http_client,
    make_tapestry,
    serving,
    started,
)

from pirn_like import (
    ClosedResourceError,
    RunStatus,
    Signature,
    SignatureError,
    SignaturePreset,
    content_hash,
)
from pirn_like.triggers import WebhookTrigger
from pirn_like.triggers._serve_asgi import serve_asgi

pytestmark = pytest.mark.anyio
ON_UVICORN = pytest.mark.parametrize("anyio_backend", ["asyncio"])
VIA = pytest.mark.parametrize(
    ("anyio_backend", "via"),
    [("asyncio", "asgi"), ("trio", "asgi"), ("asyncio", "uvicorn")],
    ids=["asgi-asyncio", "asgi-trio", "uvicorn"],
)


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()
    gates.clear()
    started.clear()


def _trigger(via: str = "asgi", **options: object) -> WebhookTrigger:
    """A trigger served by uvicorn on a free port (``via="uvicorn"``) or called in process."""
    options.setdefault("token", TOKEN)
    options.setdefault("serve", via == "uvicorn")
    options.setdefault("port", 0)
    return WebhookTrigger(path="/run", **options)  # type: ignore[arg-type]


def _client(trigger: WebhookTrigger) -> httpx.AsyncClient:
    return http_client(trigger) if trigger.serve else asgi_client(trigger)


# -- accepted requests ----------------------------------------------------------------


@ON_UVICORN
async def test_post_answers_202_with_the_run_id_and_records_what_started_it() -> None:
    t = make_tapestry()
    trigger = _trigger("uvicorn")
    async with serving(trigger, t) as outcomes, http_client(trigger) as client:
        response = await client.post("/run", json={"x": 4}, headers=AUTH)
        assert response.status_code == 202
        run_id = response.json()["run_id"]
        (outcome,) = await outcomes.wait_for(1)
        assert outcome.run_id == run_id
        assert outcome.status is RunStatus.SUCCEEDED
        record = await t.history.get_run(run_id)
    assert record is not None
    assert record.trigger is not None
    assert record.trigger["kind"] == "webhook"
    assert record.trigger["source"] == "/run"
    assert record.trigger["remote"] == "127.0.0.1"
    assert run_id == f"webhook-{record.trigger['message_id']}"


@ON_UVICORN
@pytest.mark.parametrize("ask", [{"params": {"wait": "true"}}, {"headers": {"Prefer": "wait=20"}}])
async def test_waiting_client_gets_the_status_and_output_hashes_not_values(
    ask: dict[str, dict[str, str]],
) -> None:
    trigger = _trigger("uvicorn")
    async with serving(trigger, make_tapestry()), http_client(trigger) as client:
        headers = {**AUTH, **ask.get("headers", {})}
        response = await client.post(
            "/run", json={"x": 21}, headers=headers, params=ask.get("params")
        )
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "succeeded"
    assert body["outputs"] == {"d": content_hash(42)}
    # Hashes only: no field carries the value itself.
    assert set(body) == {"run_id", "status", "outputs"}
    assert body["run_id"].startswith("webhook-")


@ON_UVICORN
async def test_failed_run_answers_500_with_its_errors() -> None:
    trigger = _trigger("uvicorn")
    async with serving(trigger, make_tapestry()), http_client(trigger) as client:
        response = await client.post("/run?wait=true", json={"x": -1}, headers=AUTH)
    assert response.status_code == 500
    body = response.json()
    assert body["status"] == "failed"
    assert body["errors"] == ["builtins.ValueError: negative: -1"]


async def test_empty_body_runs_with_defaults_and_wait_times_out_into_202() -> None:
    t = make_tapestry()
    gates[3] = anyio.Event()
    trigger = _trigger(wait_timeout=0.05)
    async with serving(trigger, t), asgi_client(trigger) as client:
        response = await client.post("/run?wait=true", json={"x": 3}, headers=AUTH)
        assert response.status_code == 202
        assert response.json()["status"] == "running"
        gates[3].set()
        refused = await client.post("/run?wait=true", content=b"", headers=AUTH)
    # An empty body means "no parameters": this tapestry needs x.
    assert refused.status_code == 422
    assert "missing required parameter 'x'" in refused.json()["detail"]


# -- refusals ---------------------------------------------------------------------------


@ON_UVICORN
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}],
    ids=["none", "wrong-token", "wrong-scheme"],
)
async def test_401_without_a_valid_token(headers: dict[str, str]) -> None:
    trigger = _trigger("uvicorn")
    async with serving(trigger, make_tapestry()), http_client(trigger) as client:
        response = await client.post("/run", json={"x": 1}, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert calls == []


@ON_UVICORN
async def test_413_by_content_length_and_by_counting_a_chunked_body() -> None:
    trigger = _trigger("uvicorn", max_body_bytes=1000)
    big = json.dumps({"x": 1, "pad": "a" * 2000}).encode()

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for i in range(0, len(big), 100):
            yield big[i : i + 100]

    async with serving(trigger, make_tapestry()), http_client(trigger) as client:
        declared = await client.post("/run", content=big, headers=AUTH)
        streamed = await client.post("/run", content=chunks(), headers=AUTH)
        fits = await client.post("/run?wait=true", json={"x": 1}, headers=AUTH)
    assert "content-length" not in streamed.request.headers
    assert (declared.status_code, streamed.status_code, fits.status_code) == (413, 413, 200)
    assert "1000 bytes" in declared.json()["error"]


@ON_UVICORN
async def test_408_for_a_body_that_does_not_arrive_in_time() -> None:
    trigger = _trigger("uvicorn", body_timeout=0.2)
    head = (
        f"POST /run HTTP/1.1\r\nHost: svc\r\nAuthorization: Bearer {TOKEN}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    )
    async with serving(trigger, make_tapestry()):
        # A client that sends a tenth of its body and then nothing more.
        async with await anyio.connect_tcp("127.0.0.1", trigger.port) as slow:
            await slow.send(head.encode() + b'{"x": 1, ')
            with anyio.fail_after(10):
                answer = await slow.receive()
        async with http_client(trigger) as client:  # and the server goes on serving
            fits = await client.post("/run?wait=true", json={"x": 1}, headers=AUTH)
    assert answer.startswith(b"HTTP/1.1 408")
    assert b"did not arrive within 0.2s" in answer
    assert fits.status_code == 200


BAD_BODIES = [
    (b"{", "not valid JSON"),
    (b"\xff\xfe{", "not valid JSON"),
    (b'{"x": NaN}', "not valid JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    (b"[1, 2]", "not a JSON array"),
    (b'"x"', "not a JSON string"),
    (b"null", "not a JSON null"),
]


@VIA
async def test_400_for_a_body_that_is_not_a_json_object(via: str) -> None:
    trigger = _trigger(via, max_body_bytes=1 << 20)
    async with serving(trigger, make_tapestry()), _client(trigger) as client:
        for body, says in BAD_BODIES:
            response = await client.post("/run", content=body, headers=AUTH)
            assert response.status_code == 400, body[:20]
            assert says in response.json()["error"]
    assert calls == []


@VIA
@pytest.mark.parametrize("checked_up_front", [True, False])
async def test_422_names_the_parameter(via: str, checked_up_front: bool) -> None:
    t = make_tapestry()
    # With the tapestry the body is checked before it is accepted (also without waiting);
    # without, the refused run's outcome is mapped for a waiting client.
    trigger = _trigger(via, tapestry=t if checked_up_front else None)
    query = "" if checked_up_front else "?wait=true"
    async with serving(trigger, t), _client(trigger) as client:
        for body, field in [({"x": "ten"}, "'x'"), ({"x": 1, "y": 2}, "'y'"), ({}, "'x'")]:
            response = await client.post(f"/run{query}", json=body, headers=AUTH)
            assert response.status_code == 422
            assert field in response.json()["detail"]
    assert calls == []


async def test_to_parameters_maps_the_body_and_its_errors_are_422() -> None:
    def from_event(body: dict[str, object]) -> dict[str, object]:
        return {"x": body["payload"]}

    trigger = _trigger(to_parameters=from_event)
    async with serving(trigger, make_tapestry()), asgi_client(trigger) as client:
        ok = await client.post("/run?wait=true", json={"payload": 5}, headers=AUTH)
        bad = await client.post("/run?wait=true", json={"other": 5}, headers=AUTH)
    assert ok.status_code == 200
    assert ok.json()["outputs"] == {"d": content_hash(10)}
    assert bad.status_code == 422
    assert "KeyError: 'payload'" in bad.json()["detail"]


@VIA
async def test_503_with_a_clear_message_when_nothing_consumes_the_trigger(via: str) -> None:
    # Served without run_forever: the seed's bare uvicorn.run(trigger.app).
    trigger = _trigger()
    async with AsyncExitStack() as stack:
        if via == "uvicorn":
            trigger.port = await stack.enter_async_context(
                serve_asgi(trigger.app, host=trigger.host, port=0, name="test")
            )
        client = await stack.enter_async_context(
            http_client(trigger) if via == "uvicorn" else asgi_client(trigger)
        )
        response = await client.post("/run", json={"x": 1}, headers=AUTH)
        health = await client.get("/health")
    assert response.status_code == 503
    assert "run_forever" in response.json()["error"]
    assert response.headers["Retry-After"] == "1"
    assert health.status_code == 503


@VIA
async def test_503_with_retry_after_when_the_queue_is_full(via: str) -> None:
    gates[1] = anyio.Event()
    trigger = _trigger(via, queue_size=1, accept_timeout=30)
    responses: list[httpx.Response] = []
    first_answer = anyio.Event()

    async def post(client: httpx.AsyncClient, x: int) -> None:
        responses.append(await client.post("/run", json={"x": x}, headers=AUTH))
        first_answer.set()

    async with serving(trigger, make_tapestry(), max_concurrent_runs=1) as outcomes:
        async with _client(trigger) as client:
            # The only run slot is busy with x=1 until its gate opens.
            assert (await client.post("/run", json={"x": 1}, headers=AUTH)).status_code == 202
            async with anyio.create_task_group() as tg:
                tg.start_soon(post, client, 2)
                tg.start_soon(post, client, 3)
                with anyio.fail_after(10):
                    await first_answer.wait()
                # One of them waits in the queue, the other found it full.
                gates[1].set()
        await outcomes.wait_for(2)
    full = next(r for r in responses if r.status_code == 503)
    assert full.headers["Retry-After"] == "1"
    assert "waiting for a run slot" in full.json()["error"]
    assert sorted(r.status_code for r in responses) == [202, 503]


@VIA
async def test_503_when_no_run_slot_frees_up_in_time(via: str) -> None:
    gates[1] = anyio.Event()
    trigger = _trigger(via, accept_timeout=0.05)
    async with (
        serving(trigger, make_tapestry(), max_concurrent_runs=1),
        _client(trigger) as client,
    ):
        assert (await client.post("/run", json={"x": 1}, headers=AUTH)).status_code == 202
        response = await client.post("/run", json={"x": 2}, headers=AUTH)
        gates[1].set()
    assert response.status_code == 503
    assert "no run slot freed up" in response.json()["error"]
    assert response.headers["Retry-After"] == "1"
    assert calls == [1]  # the refused request was withdrawn, never run


# -- idempotency and shutdown ---------------------------------------------------------


@VIA
async def test_idempotency_key_runs_once_and_409_while_in_progress(via: str) -> None:
    t = make_tapestry()
    gates[7] = anyio.Event()
    trigger = _trigger(via)
    headers = {**AUTH, "Idempotency-Key": "order-17"}
    async with serving(trigger, t) as outcomes, _client(trigger) as client:
        first = await client.post("/run", json={"x": 7}, headers=headers)
        again_while_running = await client.post("/run", json={"x": 7}, headers=headers)
        gates[7].set()
        await outcomes.wait_for(1)
        retry = await client.post("/run?wait=true", json={"x": 7}, headers=headers)
        too_long = await client.post(
            "/run", json={"x": 1}, headers={**AUTH, "Idempotency-Key": "k" * 201}
        )
    assert first.status_code == 202
    assert again_while_running.status_code == 409
    assert again_while_running.json()["run_id"] == first.json()["run_id"]
    assert retry.status_code == 200
    run_id = first.json()["run_id"]
    assert retry.json() == {"run_id": run_id, "status": "succeeded", "duplicate": True}
    assert too_long.status_code == 400
    assert "Idempotency-Key" in too_long.json()["error"]
    assert calls == [7]


async def test_a_run_stopped_by_shutdown_answers_503_to_its_waiting_client() -> None:
    gates[5] = anyio.Event()
    started[5] = anyio.Event()
    trigger = _trigger()
    stopped: list[httpx.Response] = []

    async def post(client: httpx.AsyncClient) -> None:
        stopped.append(await client.post("/run?wait=true", json={"x": 5}, headers=AUTH))

    async with asgi_client(trigger) as client:
        async with (
            anyio.create_task_group() as tg,
            serving(trigger, make_tapestry(), grace_period=0),
        ):
            tg.start_soon(post, client)
            with anyio.fail_after(10):
                await started[5].wait()  # the run waits at its gate
        after = await client.post("/run", json={"x": 1}, headers=AUTH)
    assert stopped[0].status_code == 503
    assert "stopped before the run finished" in stopped[0].json()["error"]
    assert after.status_code == 503  # closed: nothing takes requests any more


# -- authentication -----------------------------------------------------------------


async def test_generated_token_is_logged_once_and_works(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PIRN_LIKE_WEBHOOK_TOKEN", raising=False)
    caplog.set_level(logging.WARNING, logger="pirn_like.triggers")
    trigger = WebhookTrigger(path="/run", serve=False)
    assert trigger.app is trigger.app
    (record,) = [r for r in caplog.records if "generated" in r.getMessage()]
    assert record.levelno == logging.WARNING
    token = record.getMessage().rsplit(" ", 1)[1]
    async with serving(trigger, make_tapestry()), asgi_client(trigger) as client:
        ok = await client.post(
            "/run?wait=true", json={"x": 1}, headers={"Authorization": f"Bearer {token}"}
        )
        refused = await client.post("/run", json={"x": 1})
    assert (ok.status_code, refused.status_code) == (200, 401)
    assert sum(token in r.getMessage() for r in caplog.records) == 1


async def test_token_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_TOKEN", "from-env")
    trigger = WebhookTrigger(path="/run", serve=False, token_env="HOOK_TOKEN")
    async with serving(trigger, make_tapestry()), asgi_client(trigger) as client:
        ok = await client.post("/run", json={"x": 1}, headers={"Authorization": "Bearer from-env"})
        refused = await client.post("/run", json={"x": 1}, headers=AUTH)
    assert (ok.status_code, refused.status_code) == (202, 401)


async def test_auth_off_must_be_explicit_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="pirn_like.triggers")
    trigger = WebhookTrigger(path="/open", serve=False, auth=False)
    assert any("authentication is off" in r.getMessage() for r in caplog.records)
    async with serving(trigger, make_tapestry()), asgi_client(trigger) as client:
        response = await client.post("/open?wait=true", json={"x": 2})
    assert response.status_code == 200
    with pytest.raises(ValueError, match="auth=False"):
        WebhookTrigger(auth=False, token="t")


@pytest.mark.parametrize("preset", list(SignaturePreset))
async def test_signed_requests_are_accepted_and_tampered_ones_refused(
    preset: SignaturePreset,
) -> None:
    signature = Signature("hook-secret", preset)
    trigger = _trigger(token=None, signature=signature)
    body = json.dumps({"x": 6}).encode()
    headers = signature.sign(body)
    if preset is SignaturePreset.GITHUB:
        headers["X-GitHub-Delivery"] = "d-1"
    async with serving(trigger, make_tapestry()), asgi_client(trigger) as client:
        ok = await client.post("/run?wait=true", content=body, headers=headers)
        tampered = await client.post("/run", content=body.replace(b"6", b"7"), headers=headers)
        unsigned = await client.post("/run", content=body, headers=AUTH)
        # A replay (the very same signed request) is recognised and not run again.
        replay = await client.post("/run?wait=true", content=body, headers=headers)
    assert ok.status_code == 200
    assert (tampered.status_code, unsigned.status_code) == (401, 401)
    assert "does not match" in tampered.json()["error"]
    assert replay.status_code == 200
    assert replay.json()["duplicate"] is True
    assert replay.json()["run_id"] == ok.json()["run_id"]
    assert calls == [6]


@pytest.mark.parametrize("preset", [p for p in SignaturePreset if p.timestamped])
@pytest.mark.parametrize("skew", [-1000, 1000], ids=["old", "future"])
async def test_signatures_outside_the_replay_window_are_refused(
    preset: SignaturePreset, skew: int
) -> None:
    signature = Signature("hook-secret", preset, tolerance=300)
    trigger = _trigger(token=None, signature=signature)
    body = b'{"x": 1}'
    headers = signature.sign(body, timestamp=int(time.time()) + skew)
    async with serving(trigger, make_tapestry()), asgi_client(trigger) as client:
        response = await client.post("/run", content=body, headers=headers)
    assert response.status_code == 401
    assert "replay window is 300s" in response.json()["error"]
    assert calls == []


async def test_a_bearer_token_given_with_a_signature_is_accepted_too() -> None:
    trigger = _trigger(signature=Signature("hook-secret"))
    async with serving(trigger, make_tapestry()), asgi_client(trigger) as client:
        response = await client.post("/run", json={"x": 1}, headers=AUTH)
    assert response.status_code == 202


async def test_secrets_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    signature = Signature("hook-secret")
    trigger = _trigger(signature=signature)
    body = b'{"x": 1}'
    async with serving(trigger, make_tapestry()), asgi_client(trigger) as client:
        await client.post("/run", content=body, headers={"Authorization": "Bearer nope"})
        await client.post("/run", content=body, headers=signature.sign(body))
    assert (b"nope", TOKEN.encode()) in compared
    expected = signature.sign(body)["X-Pirn-Like-Signature"].split("v1=")[1].encode()
    assert (expected, expected) in compared


# -- health, lifecycle, arguments -----------------------------------------------------


async def test_health_needs_no_auth_and_says_nothing_else() -> None:
    trigger = _trigger()
    async with serving(trigger, make_tapestry()), asgi_client(trigger) as client:
        response = await client.get("/health")
        wrong_method = await client.get("/run")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert wrong_method.status_code == 405


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_serving_itself_needs_asyncio() -> None:
    trigger = _trigger("uvicorn")
    with pytest.raises(RuntimeError, match=r"asyncio only.*serve=False"):
        async with trigger:
            pass


async def test_a_closed_trigger_is_not_reused() -> None:
    trigger = _trigger()
    async with trigger:
        pass
    with pytest.raises(ClosedResourceError):
        async with trigger:
            pass
    with pytest.raises(ClosedResourceError):
        await trigger.wait_ready()


def test_bad_arguments_are_refused_naming_them() -> None:
    with pytest.raises(ValueError, match="path must start with '/'"):
        WebhookTrigger(path="run", token="t")
    with pytest.raises(ValueError, match="health_path"):
        WebhookTrigger(path="/health", token="t")
    with pytest.raises(ValueError, match="max_body_bytes"):
        WebhookTrigger(token="t", max_body_bytes=0)
    with pytest.raises(TypeError, match="Signature"):
        WebhookTrigger(signature="secret")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="token must not be empty"):
        WebhookTrigger(token=" ")


@ON_UVICORN
async def test_a_taken_port_fails_at_start() -> None:
    first = _trigger("uvicorn")
    async with first:
        second = _trigger(serve=True, port=first.port)
        with pytest.raises(OSError):
            async with second:
                pass


# -- the signing module on its own -----------------------------------------------------


@pytest.mark.parametrize("preset", list(SignaturePreset))
def test_signatures_round_trip_and_refuse_another_secret(preset: SignaturePreset) -> None:
    signature = Signature(b"k1", preset)
    headers = signature.sign(b"body")
    signature.verify(headers, b"body")
    signature.verify({k.lower(): v for k, v in headers.items()}, b"body")
    with pytest.raises(SignatureError):
        Signature(b"k2", preset).verify(headers, b"body")
    with pytest.raises(SignatureError, match=r"no .* header"):
        signature.verify({}, b"body")


def test_rotated_secrets_any_v1_may_match_and_malformed_headers_are_refused() -> None:
    old, new = Signature("old"), Signature("new")
    t = int(time.time())
    v_old = old.sign(b"b", timestamp=t)["X-Pirn-Like-Signature"].split("v1=")[1]
    v_new = new.sign(b"b", timestamp=t)["X-Pirn-Like-Signature"].split("v1=")[1]
    new.verify({"X-Pirn-Like-Signature": f"t={t},v1={v_old},v1={v_new}"}, b"b")
    for bad, says in [
        ("garbage", "no v1"),
        (f"t=soon,v1={v_new}", "not unix seconds"),
        (f"v1={v_new}", "no timestamp"),
        ("x" * 5000, "too long"),
    ]:
        with pytest.raises(SignatureError, match=says):
            new.verify({"X-Pirn-Like-Signature": bad}, b"b")


def test_signature_arguments_are_checked_and_the_secret_is_not_shown() -> None:
    with pytest.raises(ValueError, match="non-empty secret"):
        Signature("")
    with pytest.raises(ValueError, match="unknown signature preset 'gitlab'"):
        Signature("s", "gitlab")
    with pytest.raises(ValueError, match="tolerance"):
        Signature("s", tolerance=0)
    assert "s3cr3t" not in repr(Signature("s3cr3t"))
