"""``run_stream``: run a pipeline once per item of a streaming source."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from pirn_like.core._records import RunOutcome, RunResult
from pirn_like.protocols import StreamSource
from pirn_like.streaming._trigger import StreamingSourceTrigger
from pirn_like.triggers._forever import run_forever

if TYPE_CHECKING:
    from pirn_like._tapestry import Tapestry

__all__ = ["ResultHook", "StreamSummary", "run_stream"]

_log = logging.getLogger("pirn_like.streaming")

ResultHook = Callable[[RunResult], Awaitable[None] | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamSummary:
    """What ``run_stream`` did: items settled, by how their runs ended."""

    items: int
    """Items whose runs ended (ran, refused or already recorded)."""
    succeeded: int
    failed: int
    """Runs recorded as failed or timed out."""
    refused: int
    """Items refused before anything ran (a value the parameter does not accept)."""
    duplicates: int
    """Items whose run was already recorded (a redelivery), not run again."""


async def run_stream(
    source: StreamSource,
    tapestry: Tapestry,
    *,
    on_result: ResultHook | None = None,
    max_in_flight: int = 1,
    ordered: bool = True,
    stop: anyio.Event | None = None,
    grace_period: float = 30.0,
) -> StreamSummary:
    """Run ``tapestry`` once per item of ``source``, each item the value of
    ``source.parameter_name``; return when the source ends or ``stop`` is set.

    At most ``max_in_flight`` items are in flight at once (the source is not read
    further while that many are); an item is acknowledged to its source only after
    its run is recorded in the tapestry's history. With ``ordered=True`` (the
    default) ``on_result`` is called and items are acknowledged in source order even
    when runs end out of order; with ``ordered=False`` each as its run ends.

    ``on_result`` (sync or async) gets the ``RunResult`` of every run, failed ones
    included: a failing run does not stop the stream. Items refused before running
    (a value the parameter rejects) are logged and counted; items already recorded
    (a source that redelivers) are counted as duplicates; neither has a result. When
    ``on_result`` raises, its item is not acknowledged, the stream stops as if
    ``stop`` were set, and ``run_stream`` raises that exception once the runs in
    flight ended.

    Setting ``stop`` stops reading the source; runs in flight get ``grace_period``
    seconds to finish, then are cancelled (their items not acknowledged). The
    tapestry is opened if it is not, and left open, as ``tapestry.run`` does.
    """
    if max_in_flight < 1:
        raise ValueError(f"max_in_flight must be at least 1, not {max_in_flight}")
    if on_result is not None and not callable(on_result):
        raise TypeError(f"on_result must be a callable taking a RunResult, not {on_result!r}")
    halt = anyio.Event()
    tally = _Tally(on_result, halt)
    trigger = StreamingSourceTrigger(source, ordered=ordered, on_settle=tally.settled)
    async with anyio.create_task_group() as relays:
        if stop is not None:
            relays.start_soon(_relay, stop, halt)
        await run_forever(
            trigger,
            tapestry,
            max_concurrent_runs=max_in_flight,
            grace_period=grace_period,
            handle_signals=False,
            stop=halt,
        )
        relays.cancel_scope.cancel()
    if tally.error is not None:
        raise tally.error
    return tally.summary()


async def _relay(stop: anyio.Event, halt: anyio.Event) -> None:
    await stop.wait()
    halt.set()


class _Tally:
    """Counts outcomes and hands results to ``on_result`` (until it raises)."""

    def __init__(self, on_result: ResultHook | None, halt: anyio.Event) -> None:
        self._on_result = on_result
        self._halt = halt
        self.error: Exception | None = None
        self._counts: dict[str, int] = dict.fromkeys(_CATEGORIES, 0)

    def summary(self) -> StreamSummary:
        return StreamSummary(items=sum(self._counts.values()), **self._counts)

    async def settled(self, outcome: RunOutcome) -> None:
        self._counts[_category(outcome)] += 1
        if outcome.status is None:
            _log.warning("stream item refused: %s", outcome.error)
        if self._on_result is None or outcome.result is None or self.error is not None:
            return
        try:
            returned = self._on_result(outcome.result)
            if inspect.isawaitable(returned):
                await returned
        except Exception as exc:
            self.error = exc
            self._halt.set()
            raise  # the item is not acknowledged


_CATEGORIES = ("succeeded", "failed", "refused", "duplicates")


def _category(outcome: RunOutcome) -> str:
    if outcome.duplicate:
        return "duplicates"
    if outcome.status is None:
        return "refused"
    return "succeeded" if outcome.succeeded else "failed"
