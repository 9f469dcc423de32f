"""Clocks for time-based triggers: the system's, and one that moves only when told to."""

from __future__ import annotations

import bisect
import itertools
from datetime import UTC, datetime, timedelta
from typing import Protocol

import anyio
from anyio.lowlevel import checkpoint

__all__ = ["Clock", "ManualClock", "SystemClock"]

_RECHECK_SECONDS = 60.0
"""``SystemClock`` looks at the wall clock at least this often while it sleeps, so a
stepped clock (NTP, a suspended machine) is noticed."""


class Clock(Protocol):
    """Where a time-based trigger reads the time and waits for it.

    ``now`` is timezone-aware (UTC). ``sleep_until`` returns once ``now() >= moment``
    (at once if that is already so) and is cancellable like any other wait.
    """

    def now(self) -> datetime: ...
    async def sleep_until(self, moment: datetime) -> None: ...


class SystemClock:
    """The machine's wall clock (the default)."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, moment: datetime) -> None:
        moment = _aware(moment, "moment")
        while True:
            left = (moment - self.now()).total_seconds()
            if left <= 0:
                return
            await anyio.sleep(min(left, _RECHECK_SECONDS))

    def __repr__(self) -> str:
        return "SystemClock()"


class ManualClock:
    """A clock that stands still until ``advance`` or ``advance_to`` moves it.

    For tests and examples: a trigger given this clock fires as soon as the clock is
    moved past its next fire time, without real waiting. ``wait_for_sleeper`` tells
    when a task waits on the clock and for what moment, so a test can move the clock
    exactly to it. ``start`` defaults to 2025-01-01 00:00 UTC.
    """

    def __init__(self, start: datetime | str = "2025-01-01T00:00:00+00:00") -> None:
        moment = datetime.fromisoformat(start) if isinstance(start, str) else start
        self._now = _aware(moment, "start").astimezone(UTC)
        self._order = itertools.count()
        self._sleepers: list[tuple[datetime, int, anyio.Event]] = []
        self._arrival: anyio.Event | None = None

    def __repr__(self) -> str:
        return f"ManualClock({self._now.isoformat()!r})"

    def now(self) -> datetime:
        return self._now

    @property
    def sleepers(self) -> tuple[datetime, ...]:
        """The moments tasks are waiting for, earliest first."""
        return tuple(moment for moment, _, _ in self._sleepers)

    def advance(self, by: float | timedelta) -> None:
        """Move the clock forward by ``by`` (seconds or a timedelta), waking every task
        whose moment has come."""
        delta = by if isinstance(by, timedelta) else timedelta(seconds=by)
        if delta < timedelta(0):
            raise ValueError(f"a ManualClock only moves forward; got {by!r}")
        self.advance_to(self._now + delta)

    def advance_to(self, moment: datetime) -> None:
        """Move the clock forward to ``moment``, waking every task whose moment has come."""
        moment = _aware(moment, "moment").astimezone(UTC)
        if moment < self._now:
            raise ValueError(
                f"a ManualClock only moves forward: it is {self._now.isoformat()}, "
                f"not {moment.isoformat()}"
            )
        self._now = moment
        # Woken sleepers leave the list here, not when they next run, so ``sleepers``
        # and ``wait_for_sleeper`` only ever show tasks that are still waiting.
        while self._sleepers and self._sleepers[0][0] <= moment:
            self._sleepers.pop(0)[2].set()

    async def sleep_until(self, moment: datetime) -> None:
        moment = _aware(moment, "moment").astimezone(UTC)
        if moment <= self._now:
            await checkpoint()
            return
        entry = (moment, next(self._order), anyio.Event())
        bisect.insort(self._sleepers, entry)
        if self._arrival is not None:
            self._arrival.set()
            self._arrival = None
        try:
            await entry[2].wait()
        finally:
            if entry in self._sleepers:  # cancelled before its moment came
                self._sleepers.remove(entry)

    async def wait_for_sleeper(self) -> datetime:
        """Wait until some task sleeps on this clock; the earliest moment slept for."""
        while not self._sleepers:
            if self._arrival is None:
                self._arrival = anyio.Event()
            await self._arrival.wait()
        return self._sleepers[0][0]


def _aware(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware (e.g. tzinfo=UTC), got {moment!r}")
    return moment
