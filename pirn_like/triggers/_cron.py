"""``CronTrigger``: runs on a schedule, once per fire across every process that leads."""

from __future__ import annotations

import enum
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Self

import anyio

from pirn_like._errors import ClosedResourceError
from pirn_like.core._records import RunOutcome, RunRequest
from pirn_like.protocols import Delivery
from pirn_like.triggers._clock import Clock, SystemClock
from pirn_like.triggers._leadership import Leadership
from pirn_like.triggers._lease import Lease, lease_from_url
from pirn_like.triggers._schedules import CronSchedule, Interval, Schedule, zone

__all__ = ["CronTrigger", "MissedFires"]

_log = logging.getLogger("pirn_like.triggers")
_MICROSECOND = timedelta(microseconds=1)

Parameters = Mapping[str, Any] | Callable[[datetime], Mapping[str, Any]]


class MissedFires(enum.Enum):
    """What a ``CronTrigger`` does with fire times that passed while it could not fire:
    the service was down, busy with ``max_concurrent_runs`` runs, or another process
    led and stopped."""

    SKIP = "skip"
    """Drop them; the next run is at the next fire time still to come."""
    RUN_ONCE = "run_once"
    """One run for all of them, for the latest missed time, at once."""
    CATCH_UP = "catch_up"
    """One run per missed time, oldest first, as fast as there is room."""


class CronTrigger:
    """Starts a run at each fire time of a schedule.

    Either ``every_seconds`` (at whole multiples of it since the Unix epoch, UTC) or
    ``cron``, a cron expression evaluated in ``timezone`` by cronsim (``pip install
    'pirn-like[cron]'``; see ``docs/triggers.md`` for what happens across
    daylight-saving changes).

    Each run's id is ``cron-<sha256(name, scheduled time)>``, so a fire is run at
    most once by a history however many processes fire it; ``name`` defaults to the
    schedule's description. ``RunRequest.trigger`` holds ``kind``, ``source`` (the
    name), ``scheduled_at`` and ``fired_at`` (ISO 8601, UTC). ``parameters`` is a
    mapping, or a function of the scheduled time (aware, in ``timezone``) returning one.

    ``missed_fires`` decides what happens to fire times that passed while nothing
    fired (see ``MissedFires``). Without a lease, "nothing fired" only covers this
    process being busy: it starts from the time it opens. With ``lease`` (a ``Lease``,
    or a URL for ``lease_from_url``: ``sqlite:///…``, ``postgresql://…``,
    ``valkey://…``), only the process holding the lease fires, the lease store keeps
    the last fire time, and a new leader (or a restarted one) carries on from there.
    ``clock`` defaults to the system clock; tests and examples pass a ``ManualClock``.
    """

    kind = "cron"

    def __init__(
        self,
        cron: str | None = None,
        *,
        every_seconds: float | None = None,
        timezone: str | tzinfo = "UTC",
        name: str | None = None,
        parameters: Parameters | None = None,
        missed_fires: MissedFires = MissedFires.RUN_ONCE,
        clock: Clock | None = None,
        lease: Lease | str | None = None,
    ) -> None:
        self._zone = zone(timezone)
        self._schedule = _schedule(cron, every_seconds, self._zone, timezone)
        if name is not None and not name.strip():
            raise ValueError("a CronTrigger name must not be blank")
        self.name = name if name is not None else self._schedule.description
        if not isinstance(missed_fires, MissedFires):
            raise TypeError(f"missed_fires must be a MissedFires, not {missed_fires!r}")
        self.missed_fires = missed_fires
        if not (parameters is None or callable(parameters) or isinstance(parameters, Mapping)):
            raise TypeError(
                "parameters must be a mapping or a function of the scheduled time, "
                f"not {type(parameters).__name__}"
            )
        self._parameters = parameters
        self._clock = clock if clock is not None else SystemClock()
        if isinstance(lease, str):
            lease = lease_from_url(lease, f"cron:{self.name}")
        self._lease = lease
        self._state = "new"
        self._stack = AsyncExitStack()
        self._leadership: Leadership | None = None
        self._cursor: datetime | None = None
        """Every fire up to here was delivered, skipped or folded into a later one."""
        self._in_flight: set[datetime] = set()
        """Delivered and not settled (released ones stay: they are not done)."""
        self._term: int | None = None
        self._saved: datetime | None = None

    def __repr__(self) -> str:
        return f"CronTrigger({self.name!r})"

    @property
    def lease(self) -> Lease | None:
        return self._lease

    async def __aenter__(self) -> Self:
        if self._state != "new":
            raise ClosedResourceError(f"{self!r} was opened before; create a new trigger")
        self._mark_lock = anyio.Lock()
        # Where a trigger with nothing to carry on from starts: the time it opens.
        self._opened_at = self._clock.now()
        lease = self._lease
        if lease is None:
            self._cursor = self._opened_at
            self._state = "open"
            return self
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(lease)
            stack.push_async_callback(self._save_mark)
            self._leadership = Leadership(lease)
            holding = await stack.enter_async_context(anyio.create_task_group())
            await holding.start(self._leadership.run)
            stack.callback(holding.cancel_scope.cancel)
            self._stack = stack.pop_all()
        self._state = "open"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._state = "closed"
        # Stops renewing, saves the last fire, then releases the lease.
        await self._stack.aclose()

    def deliveries(self) -> AsyncIterator[Delivery]:
        if self._state != "open":
            state = "was closed" if self._state == "closed" else "is not open"
            raise ClosedResourceError(
                f"{self!r} {state}: use it inside `async with` or give it to run_forever"
            )
        return self._deliveries()

    async def _deliveries(self) -> AsyncIterator[Delivery]:
        while (fire := await self._next_fire()) is not None:
            scheduled, fired = fire
            yield _CronDelivery(self._request(scheduled, fired), scheduled, self._finished)

    # -- choosing the next fire ---------------------------------------------------

    async def _next_fire(self) -> tuple[datetime, datetime] | None:
        """The next fire to deliver and when it fired; None once the schedule ends."""
        while True:
            term = await self._lead()
            cursor = self._cursor
            assert cursor is not None  # set on opening or on taking the lease
            due = self._schedule.next_after(cursor)
            if due is None:
                _log.info("%r: the schedule has no more fire times", self)
                return None
            now = self._clock.now()
            if due <= now:
                # Fell due while nothing waited for it: the policy decides.
                match self.missed_fires:
                    case MissedFires.CATCH_UP:
                        return self._take(due, now)
                    case MissedFires.RUN_ONCE:
                        latest = self._schedule.last_until(cursor, now)
                        assert latest is not None  # ``due`` is one
                        return self._take(latest, now)
                    case MissedFires.SKIP:
                        latest = self._schedule.last_until(cursor, now)
                        assert latest is not None  # ``due`` is one
                        _log.info(
                            "%r: skipping the missed fires from %s to %s",
                            self,
                            due.isoformat(),
                            latest.isoformat(),
                        )
                        self._cursor = latest
                        continue
            if await self._sleep_until(due, term):
                return self._take(due, self._clock.now())

    def _take(self, scheduled: datetime, fired: datetime) -> tuple[datetime, datetime]:
        self._cursor = scheduled
        self._in_flight.add(scheduled)
        return scheduled, fired

    async def _lead(self) -> int | None:
        """Wait until this process leads (if there is a lease); the term's token.

        On a new term, carry on from the last fire the lease store keeps."""
        leadership = self._leadership
        if leadership is None:
            return None
        while True:
            term = await leadership.wait_for_term()
            if term == self._term:
                return term
            try:
                stored = await leadership.lease.read_value()
            except Exception:
                _log.warning("%r: cannot read the last fire; retrying", self, exc_info=True)
                await anyio.sleep(leadership.lease.ttl / 3)
                continue
            mark = _parse_mark(stored, self)
            # Never before a fire this process delivered (an earlier term of its own).
            known = [m for m in (mark, self._cursor) if m is not None]
            self._cursor = max(known) if known else self._opened_at
            if mark is not None and (self._saved is None or mark > self._saved):
                self._saved = mark
            self._term = term
            _log.info("%r: leading from %s", self, self._cursor.isoformat())
            return term

    async def _sleep_until(self, moment: datetime, term: int | None) -> bool:
        """Sleep until ``moment``; False if this process stopped leading meanwhile."""
        leadership = self._leadership
        if leadership is None or term is None:
            await self._clock.sleep_until(moment)
            return True
        async with anyio.create_task_group() as waiting:

            async def stop_when_lost() -> None:
                await leadership.wait_lost(term)
                waiting.cancel_scope.cancel()

            waiting.start_soon(stop_when_lost)
            await self._clock.sleep_until(moment)
            waiting.cancel_scope.cancel()
        return leadership.term == term

    # -- deliveries ---------------------------------------------------------------

    def _request(self, scheduled: datetime, fired: datetime) -> RunRequest:
        at = scheduled.isoformat()
        digest = hashlib.sha256(f"{self.name}\n{at}".encode()).hexdigest()[:32]
        parameters = self._parameters
        if callable(parameters):
            local = scheduled.astimezone(self._zone)
            try:
                parameters = parameters(local)
            except Exception as exc:
                exc.add_note(f"in the parameters function of {self!r}, for {local.isoformat()}")
                raise
        return RunRequest(
            parameters=dict(parameters or {}),
            run_id=f"cron-{digest}",
            trigger={
                "kind": self.kind,
                "source": self.name,
                "scheduled_at": at,
                "fired_at": fired.astimezone(UTC).isoformat(),
            },
        )

    async def _finished(self, scheduled: datetime, settled: bool) -> None:
        if settled:
            self._in_flight.discard(scheduled)
        else:
            _log.info("%r: the run for %s was released", self, scheduled.isoformat())
        await self._save_mark()

    async def _save_mark(self) -> None:
        """Keep the last fire in the lease store: every fire up to it is done."""
        leadership = self._leadership
        cursor = self._cursor
        if leadership is None or cursor is None:
            return
        async with self._mark_lock:
            mark = min(self._in_flight) - _MICROSECOND if self._in_flight else cursor
            if self._saved is not None and mark <= self._saved:
                return
            try:
                saved = await leadership.lease.write_value(mark.isoformat())
            except Exception:
                _log.warning("%r: cannot save the last fire", self, exc_info=True)
                return
            if saved:
                self._saved = mark


class _CronDelivery:
    __slots__ = ("_finished", "_scheduled", "request")

    def __init__(
        self,
        request: RunRequest,
        scheduled: datetime,
        finished: Callable[[datetime, bool], Awaitable[None]],
    ) -> None:
        self.request = request
        self._scheduled = scheduled
        self._finished = finished

    async def settle(self, outcome: RunOutcome) -> None:
        await self._finished(self._scheduled, True)

    async def release(self) -> None:
        await self._finished(self._scheduled, False)


def _schedule(
    cron: str | None, every_seconds: float | None, zone_: tzinfo, timezone: str | tzinfo
) -> Schedule:
    if (cron is None) == (every_seconds is None):
        raise ValueError("CronTrigger needs exactly one of cron='*/5 * * * *' or every_seconds=300")
    if every_seconds is not None:
        if zone_ is not UTC:
            raise ValueError(
                f"timezone={timezone!r} only applies to cron expressions; every_seconds "
                "counts from the Unix epoch"
            )
        return Interval(every_seconds)
    assert cron is not None
    if not isinstance(cron, str) or not cron.strip():
        raise ValueError(f"cron must be a non-empty cron expression, got {cron!r}")
    return CronSchedule(cron, zone_)


def _parse_mark(stored: str | None, trigger: CronTrigger) -> datetime | None:
    if stored is None:
        return None
    try:
        mark = datetime.fromisoformat(stored)
    except ValueError:
        _log.warning("%r: ignoring an unreadable last fire %r in its lease", trigger, stored)
        return None
    return mark.astimezone(UTC) if mark.tzinfo is not None else None
