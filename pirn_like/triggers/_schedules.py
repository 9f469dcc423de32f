"""Schedules: when a time-based trigger fires. Every time here is aware and in UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pirn_like._errors import MissingExtraError

__all__ = ["CronSchedule", "Interval", "Schedule", "zone"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


class Schedule(Protocol):
    """Fire times, computed (never stored): every process computes the same ones."""

    @property
    def description(self) -> str: ...

    def next_after(self, moment: datetime) -> datetime | None:
        """The first fire strictly after ``moment``; None if there is none."""
        ...

    def last_until(self, after: datetime, until: datetime) -> datetime | None:
        """The latest fire in ``(after, until]``; None if there is none."""
        ...


class Interval:
    """Every ``seconds``, at whole multiples of it since the Unix epoch (UTC), so
    processes agree on the fire times: ``every_seconds=300`` fires at :00, :05, ..."""

    def __init__(self, seconds: float) -> None:
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds > 0:
            raise ValueError(f"every_seconds must be a positive number, got {seconds!r}")
        self._period = max(1, round(seconds * 1_000_000))
        self.description = f"every {seconds:g}s"

    def next_after(self, moment: datetime) -> datetime:
        return _at((_micros(moment) // self._period + 1) * self._period)

    def last_until(self, after: datetime, until: datetime) -> datetime | None:
        last = _micros(until) // self._period * self._period
        return _at(last) if last > _micros(after) else None


class CronSchedule:
    """A cron expression (5 fields, or 6 with seconds first, or ``@daily`` and kin)
    evaluated by cronsim in ``timezone``.

    Across daylight-saving changes cronsim follows Debian cron: an expression with a
    fixed minute and hour (``30 2 * * *``) whose time falls in the spring-forward
    gap fires once at the first minute after the gap (03:00), and in the fall-back
    overlap fires once, at the first of the two times. Other expressions
    (``*/30 * * * *``, ``0 * * * *``) step through real time: the gap's local times
    never happen, and the overlap's happen twice.
    """

    def __init__(self, expression: str, timezone: tzinfo) -> None:
        try:
            from cronsim import CronSim, CronSimError
        except ImportError as exc:
            raise MissingExtraError("CronTrigger(cron=...)", "cron", "cronsim") from exc
        self._cronsim = CronSim
        self._expression = _ALIASES.get(expression.strip().lower(), expression)
        self._zone = timezone
        try:
            CronSim(self._expression, datetime.now(timezone))
        except CronSimError as exc:
            raise ValueError(f"{expression!r} is not a valid cron expression: {exc}") from exc
        shown_zone = "" if timezone is UTC else f" ({timezone})"
        self.description = f"{expression}{shown_zone}"

    def next_after(self, moment: datetime) -> datetime | None:
        fires = self._cronsim(self._expression, moment.astimezone(self._zone))
        # A start inside a fall-back overlap can yield the first of two equal wall
        # times, which is before ``moment``: step past it.
        for fire in fires:
            fire_utc = fire.astimezone(UTC)
            if fire_utc > moment:
                return fire_utc
        return None

    def last_until(self, after: datetime, until: datetime) -> datetime | None:
        # Backwards from ``until`` (the microsecond makes cronsim consider ``until``
        # itself), kept only if forwards agrees it is the last fire up to ``until``.
        start = (until.replace(microsecond=0) + _MICROSECOND).astimezone(self._zone)
        fire = next(self._cronsim(self._expression, start, reverse=True), None)
        if fire is not None:
            latest = fire.astimezone(UTC)
            if (
                latest <= until
                and self.next_after(latest - _MICROSECOND) == latest
                and not _at_or_before(self.next_after(latest), until)
            ):
                return latest if latest > after else None
        # Rare (around daylight-saving changes): walk forwards instead.
        last = None
        while (fire_utc := self.next_after(after)) is not None and fire_utc <= until:
            last = after = fire_utc
        return last


def zone(timezone: str | tzinfo) -> tzinfo:
    """A tzinfo for an IANA name (``Europe/Paris``) or a tzinfo; ValueError otherwise."""
    if not isinstance(timezone, str):
        return timezone
    if timezone.upper() in {"UTC", "Z", "ETC/UTC"}:
        return UTC
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {timezone!r}: use an IANA name such as 'Europe/Paris'"
        ) from exc


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def _at(micros: int) -> datetime:
    return _EPOCH + micros * _MICROSECOND


def _at_or_before(moment: datetime | None, until: datetime) -> bool:
    return moment is not None and moment <= until
