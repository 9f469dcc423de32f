"""``run_forever`` in the background of a test, with the outcomes it reports (for tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import anyio

from pirn_like import RunOutcome, Tapestry
from pirn_like.protocols import Trigger
from pirn_like.triggers import run_forever


@dataclass
class Outcomes:
    """The outcomes a service reported, in order, and a way to wait for more."""

    seen: list[RunOutcome] = field(default_factory=list[RunOutcome])
    changed: anyio.Event = field(default_factory=anyio.Event)

    def add(self, outcome: RunOutcome) -> None:
        self.seen.append(outcome)
        self.changed.set()
        self.changed = anyio.Event()

    async def wait_for(self, n: int) -> list[RunOutcome]:
        """All outcomes, once there are at least ``n`` (within 10 s)."""
        with anyio.fail_after(10):
            while len(self.seen) < n:
                await self.changed.wait()
        return self.seen

    def outputs(self, knot_id: str) -> list[object]:
        """``knot_id``'s output in each run that ran here, in order."""
        return [o.result.outputs[knot_id] for o in self.seen if o.result is not None]


@asynccontextmanager
async def serving(
    trigger: Trigger, tapestry: Tapestry, *, deadline: float = 20.0, **options: Any
) -> AsyncIterator[Outcomes]:
    """``run_forever`` in the background until the block ends (within ``deadline`` s).

    ``options`` go to ``run_forever``; by default runs still going when the block ends
    are cancelled at once (``grace_period=0``: a crash, as far as a broker can tell).
    """
    outcomes = Outcomes()
    stop = anyio.Event()
    options.setdefault("handle_signals", False)
    options.setdefault("grace_period", 0)
    serve = partial(run_forever, trigger, tapestry, stop=stop, on_outcome=outcomes.add, **options)
    with anyio.fail_after(deadline):
        async with anyio.create_task_group() as tg:
            tg.start_soon(serve)
            try:
                yield outcomes
            finally:
                stop.set()
