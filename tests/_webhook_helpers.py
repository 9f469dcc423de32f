"""Shared pieces of the webhook tests: a tapestry, a service under run_forever, clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import anyio
import httpx

from pirn_like import InMemoryDataStore, KnotConfig, Parameter, RunOutcome, Tapestry, knot
from pirn_like.triggers import WebhookTrigger, run_forever

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


class Outcomes:
    """Every outcome run_forever reports, and a way to wait for the n-th."""

    def __init__(self) -> None:
        self.items: list[RunOutcome] = []
        self._changed = anyio.Event()

    def add(self, outcome: RunOutcome) -> None:
        self.items.append(outcome)
        self._changed.set()

    async def wait_for(self, n: int) -> list[RunOutcome]:
        with anyio.fail_after(10):
            while len(self.items) < n:
                self._changed = anyio.Event()
                await self._changed.wait()
        return self.items


@asynccontextmanager
async def serving(
    trigger: WebhookTrigger, tapestry: Tapestry, **options: Any
) -> AsyncIterator[Outcomes]:
    """``run_forever(trigger, tapestry)`` in the background, ready to take requests."""
    outcomes = Outcomes()
    stop = anyio.Event()
    options.setdefault("handle_signals", False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(
            partial(run_forever, trigger, tapestry, stop=stop, on_outcome=outcomes.add, **options)
        )
        with anyio.fail_after(10):
            await trigger.wait_ready()
        try:
            yield outcomes
        finally:
            stop.set()


def asgi_client(trigger: WebhookTrigger) -> httpx.AsyncClient:
    """A client that calls ``trigger.app`` in process, without a server."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=trigger.app), base_url="http://t")


def http_client(trigger: WebhookTrigger) -> httpx.AsyncClient:
    """A client of the uvicorn server the trigger started."""
    return httpx.AsyncClient(base_url=f"http://{trigger.host}:{trigger.port}", timeout=10)
