"""Shared pieces of the webhook tests: a tapestry, a service under run_forever, clients."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import _serving
import anyio
import httpx
from _serving import Outcomes

from pirn_like import InMemoryDataStore, KnotConfig, Parameter, Tapestry, knot
from pirn_like.triggers import WebhookTrigger

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

calls: list[int] = []
gates: dict[int, anyio.Event] = {}
"""A run of ``x`` waits at ``gates[x]`` (when there is one) before finishing."""
started: dict[int, anyio.Event] = {}
"""``started[x]`` (when there is one) is set once a run of ``x`` started."""


@knot
async def double(x: int) -> int:
    calls.append(x)
    if x in started:
        started[x].set()
    if x in gates:
        await gates[x].wait()
    if x < 0:
        raise ValueError(f"negative: {x}")
    return x * 2


def make_tapestry() -> Tapestry:
    t = Tapestry(data_store=InMemoryDataStore())
    with t:
        double(x=Parameter("x", int), _config=KnotConfig(id="d"))
    return t


@asynccontextmanager
async def serving(
    trigger: WebhookTrigger, tapestry: Tapestry, **options: Any
) -> AsyncIterator[Outcomes]:
    """``run_forever(trigger, tapestry)`` in the background, ready to take requests;
    runs in flight when the block ends get the usual grace period."""
    options.setdefault("grace_period", 30.0)
    async with _serving.serving(trigger, tapestry, deadline=math.inf, **options) as outcomes:
        with anyio.fail_after(10):
            await trigger.wait_ready()
        yield outcomes


def asgi_client(trigger: WebhookTrigger) -> httpx.AsyncClient:
    """A client that calls ``trigger.app`` in process, without a server."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=trigger.app), base_url="http://t")


def http_client(trigger: WebhookTrigger) -> httpx.AsyncClient:
    """A client of the uvicorn server the trigger started."""
    return httpx.AsyncClient(base_url=f"http://{trigger.host}:{trigger.port}", timeout=10)
