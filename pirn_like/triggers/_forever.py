"""``run_forever``: a service that turns trigger deliveries into recorded runs."""

from __future__ import annotations

import inspect
import logging
import signal
import threading
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

import anyio
from anyio.abc import TaskGroup

from pirn_like._errors import DuplicateRunError, PirnLikeError, ResumeError
from pirn_like.core._records import RunOutcome, RunRequest, RunStatus
from pirn_like.protocols import Delivery, Trigger

if TYPE_CHECKING:
    from pirn_like._tapestry import Tapestry
    from pirn_like.triggers._metrics import ServiceMetrics

__all__ = ["run_forever"]

_log = logging.getLogger("pirn_like.triggers")

_FINISHED = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.TIMED_OUT})

OutcomeHook = Callable[[RunOutcome], Awaitable[None] | None]


async def run_forever(
    triggers: Trigger | Sequence[Trigger],
    tapestry: Tapestry,
    *,
    max_concurrent_runs: int = 8,
    grace_period: float = 30.0,
    handle_signals: bool = True,
    stop: anyio.Event | None = None,
    on_outcome: OutcomeHook | None = None,
    metrics_port: int | None = None,
    metrics_host: str = "127.0.0.1",
) -> None:
    """Run ``tapestry`` for every delivery of ``triggers`` until told to stop.

    At most ``max_concurrent_runs`` runs are in flight; while that many run, no
    trigger is asked for more (backpressure reaches the broker or the HTTP client).
    A delivery is settled (acknowledged) only after its run is recorded in the
    tapestry's history; a delivery whose run id is already recorded as finished is
    settled as a duplicate without running again, and one recorded as interrupted
    (a crash, a shutdown) is resumed.

    SIGTERM or SIGINT (when ``handle_signals`` and on the main thread) or setting
    ``stop`` shuts the service down: triggers stop taking deliveries, runs in flight
    get ``grace_period`` seconds to finish, then are cancelled and their deliveries
    released for redelivery. Returns once everything is shut down, or when every
    trigger has run dry and the last run ended. ``on_outcome`` sees every outcome;
    ``metrics_port`` serves Prometheus metrics on ``metrics_host:metrics_port``.

    The tapestry is opened if it is not, and left open as ``Tapestry.run`` leaves it:
    use ``async with tapestry:`` around the service to close its parts (and flush its
    emitters) when it ends.
    """
    if max_concurrent_runs < 1:
        raise ValueError(f"max_concurrent_runs must be at least 1, not {max_concurrent_runs}")
    if grace_period < 0:
        raise ValueError(f"grace_period must not be negative, not {grace_period}")
    trigger_list = [triggers] if not isinstance(triggers, Sequence) else list(triggers)
    if not trigger_list:
        raise ValueError("run_forever needs at least one trigger")
    metrics = None
    if metrics_port is not None:
        from pirn_like.triggers._metrics import ServiceMetrics

        metrics = ServiceMetrics.serve(metrics_host, metrics_port)
        metrics.watch_emitters(tapestry.emitter_stats)
    service = _Service(tapestry, max_concurrent_runs, on_outcome, metrics)
    stop = stop if stop is not None else anyio.Event()
    try:
        await tapestry.open()
        async with AsyncExitStack() as stack:
            for trigger in trigger_list:
                await stack.enter_async_context(trigger)
            await service.serve(trigger_list, stop, grace_period, handle_signals)
    finally:
        if metrics is not None:
            metrics.close()


class _Service:
    def __init__(
        self,
        tapestry: Tapestry,
        max_concurrent_runs: int,
        on_outcome: OutcomeHook | None,
        metrics: ServiceMetrics | None,
    ) -> None:
        self.tapestry = tapestry
        self.capacity = max_concurrent_runs
        self.slots = anyio.Semaphore(max_concurrent_runs)
        self.on_outcome = on_outcome
        self.metrics = metrics
        self.in_flight: dict[str, anyio.Event] = {}  # run ids running in this service

    async def serve(
        self, triggers: list[Trigger], stop: anyio.Event, grace_period: float, signals: bool
    ) -> None:
        async with anyio.create_task_group() as runs:
            async with anyio.create_task_group() as intake:
                if signals and threading.current_thread() is threading.main_thread():
                    intake.start_soon(self._stop_on_signal, stop)
                intake.start_soon(self._stop_when_set, stop, intake)
                async with anyio.create_task_group() as pulling:
                    for trigger in triggers:
                        pulling.start_soon(self._pull, trigger, runs)
                # Every trigger ran dry: end once the runs in flight end.
                intake.cancel_scope.cancel()
            # Intake is over; give the runs in flight their grace period.
            if not stop.is_set():
                return
            with anyio.move_on_after(grace_period):
                await self._drained()
            runs.cancel_scope.cancel()

    async def _drained(self) -> None:
        # Every slot free means no run in flight.
        held = 0
        try:
            for _ in range(self.capacity):
                await self.slots.acquire()
                held += 1
        finally:
            for _ in range(held):
                self.slots.release()

    @staticmethod
    async def _stop_when_set(stop: anyio.Event, intake: TaskGroup) -> None:
        await stop.wait()
        _log.info("stopping: no new deliveries; runs in flight get their grace period")
        intake.cancel_scope.cancel()

    @staticmethod
    async def _stop_on_signal(stop: anyio.Event) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as received:
            async for signum in received:
                _log.info("received %s", signal.Signals(signum).name)
                stop.set()
                return

    async def _pull(self, trigger: Trigger, runs: TaskGroup) -> None:
        deliveries = trigger.deliveries()
        try:
            while True:
                await self.slots.acquire()
                try:
                    delivery = await anext(deliveries)
                except StopAsyncIteration:
                    self.slots.release()
                    _log.info("trigger %s ran dry", trigger.kind)
                    return
                except BaseException:
                    self.slots.release()
                    raise
                runs.start_soon(self._handle, trigger, delivery)
        finally:
            aclose = getattr(deliveries, "aclose", None)
            if aclose is not None:
                with anyio.CancelScope(shield=True):
                    await aclose()

    async def _handle(self, trigger: Trigger, delivery: Delivery) -> None:
        request = _with_trigger_kind(delivery.request, trigger.kind)
        metrics = self.metrics
        try:
            if metrics is not None:
                metrics.run_started(trigger.kind)
            try:
                outcome = await self._execute(request)
            except anyio.get_cancelled_exc_class():
                with anyio.CancelScope(shield=True):
                    await _release(delivery)
                raise
            except Exception:
                _log.exception("run %s could not be recorded; released", request.run_id)
                with anyio.CancelScope(shield=True):
                    await _release(delivery)
                return
            if metrics is not None:
                metrics.run_ended(trigger.kind, outcome)
            with anyio.CancelScope(shield=True):
                try:
                    await delivery.settle(outcome)
                except Exception:
                    _log.exception("settling run %s with its trigger failed", outcome.run_id)
            if self.on_outcome is not None:
                try:
                    returned = self.on_outcome(outcome)
                    if inspect.isawaitable(returned):
                        await returned
                except Exception:
                    _log.exception("on_outcome failed for run %s", outcome.run_id)
        finally:
            if metrics is not None:
                metrics.run_left(trigger.kind)
            self.slots.release()

    async def _execute(self, request: RunRequest) -> RunOutcome:
        """Run ``request`` once: skip it if already recorded, resume it if interrupted.

        An interrupted run is one recorded as running or cancelled that is not running
        in this service (a crash, a shutdown, a consumer that lost its partition).
        """
        tapestry = self.tapestry
        run_id = request.run_id
        if run_id is None:
            return await self._run(request)
        while (running := self.in_flight.get(run_id)) is not None:
            await running.wait()  # a copy of a request still running here: settle after it
        recorded = await tapestry.history.get_run(run_id)
        if recorded is not None and recorded.status in _FINISHED:
            return RunOutcome(run_id, recorded.status, duplicate=True)
        self.in_flight[run_id] = done = anyio.Event()
        try:
            if recorded is not None:
                return await self._resume(run_id)
            return await self._run(request)
        finally:
            del self.in_flight[run_id]
            done.set()

    async def _run(self, request: RunRequest) -> RunOutcome:
        run_id = request.run_id
        tapestry = self.tapestry
        try:
            result = await tapestry.run(request)
        except DuplicateRunError:
            # Another process claimed this run id between our look and our claim.
            assert run_id is not None
            recorded = await tapestry.history.get_run(run_id)
            return RunOutcome(run_id, recorded.status if recorded else None, duplicate=True)
        except PirnLikeError as exc:  # refused before anything ran: bad parameters, ...
            return RunOutcome(run_id or "", None, error=f"{type(exc).__name__}: {exc}")
        return RunOutcome(result.run_id, result.status, result)

    async def _resume(self, run_id: str) -> RunOutcome:
        _log.info("run %s was interrupted earlier; resuming it", run_id)
        try:
            result = await self.tapestry.resume(run_id)
        except ResumeError as exc:
            return RunOutcome(run_id, None, error=f"ResumeError: {exc}")
        return RunOutcome(result.run_id, result.status, result)


def _with_trigger_kind(request: RunRequest, kind: str) -> RunRequest:
    trigger = request.trigger or {}
    if trigger.get("kind"):
        return request
    return request.model_copy(update={"trigger": {"kind": kind, **trigger}})


async def _release(delivery: Delivery) -> None:
    try:
        await delivery.release()
    except Exception:
        _log.exception("releasing a delivery failed")
