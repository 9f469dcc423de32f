"""Delivering run events to emitters without letting them affect the run."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence

import anyio
from anyio.abc import TaskGroup

from pirn_like.core._events import RunEvent, RunFinished
from pirn_like.protocols import Emitter

__all__ = ["EMIT_TIMEOUT", "start_emitting"]

_log = logging.getLogger("pirn_like.engine")

EMIT_TIMEOUT = 10.0
"""Seconds one emitter may take for one event before it is abandoned (and logged)."""


def start_emitting(tg: TaskGroup, emitters: Sequence[Emitter]) -> Callable[[RunEvent], None]:
    """Start fanning events out to ``emitters`` from a task in ``tg``; returns ``send``.

    Events queue without blocking the run. An emitter that raises is logged; one
    that exceeds EMIT_TIMEOUT is dropped for the rest of the run. Sending
    ``RunFinished`` closes the stream, and the task ends once emitters drained it.
    """
    send, receive = anyio.create_memory_object_stream[RunEvent](math.inf)

    alive = list(emitters)

    async def pump() -> None:
        async with receive:
            async for event in receive:
                for emitter in tuple(alive):
                    try:
                        with anyio.fail_after(EMIT_TIMEOUT):
                            await emitter.emit(event)
                    except TimeoutError:
                        alive.remove(emitter)
                        _log.error(
                            "emitter %r took over %gs on %s; it gets no more events this run",
                            emitter,
                            EMIT_TIMEOUT,
                            type(event).__name__,
                        )
                    except Exception:
                        _log.exception("emitter %r failed on %s", emitter, type(event).__name__)

    tg.start_soon(pump)

    def emit(event: RunEvent) -> None:
        send.send_nowait(event)
        if isinstance(event, RunFinished):
            send.close()

    return emit
