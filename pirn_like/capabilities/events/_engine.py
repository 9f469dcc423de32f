"""``StoreEngine``: what every event store shares (argument checks, the read
methods, a lazy and concurrency-safe open, close); a store supplies storage."""

from __future__ import annotations

import abc
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime
from typing import Self

import anyio
from pydantic import TypeAdapter, ValidationError

from pirn_like._errors import ClosedResourceError
from pirn_like.capabilities.events._models import Event, EventKind, JsonObject, utc
from pirn_like.capabilities.events._temporal import Append, next_event, state_at

__all__ = ["EPOCH", "Clock", "StoreEngine", "Writer"]

Clock = Callable[[], datetime]
"""Returns the current time, time-zone aware (``recorded_at`` of new events)."""

Writer = Callable[[Sequence[Event], int, datetime], Event]
"""Given the entity's events, the store's last ``seq`` and last ``recorded_at``, the
event to insert (or an error): run by a store inside its write transaction."""

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
"""``recorded_at`` before the first event: what a store passes a writer then."""


def _now() -> datetime:
    return datetime.now(UTC)


class StoreEngine(abc.ABC):
    """An ``EventStore`` over the storage methods a subclass writes: ``_open``,
    ``_close``, ``_load`` (an entity's events by version), ``_write`` (one atomic
    append) and ``_since`` (events after a ``seq``)."""

    def __init__(self, *, identity: str, clock: Clock | None) -> None:
        self._identity = identity
        self._clock = clock or _now
        self._lifecycle = anyio.Lock()
        self._open_ = False
        self._closed = False
        self._entered = 0

    @property
    def identity(self) -> str:
        """Where the events are (redacted URL and table): stable and secret-free."""
        return self._identity

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._identity!r})"

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self._ready()
        self._entered += 1
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        # Entered again while open (a store shared by several users): the outermost
        # ``async with`` closes it.
        self._entered -= 1
        if self._entered == 0:
            await self.aclose()

    async def aclose(self) -> None:
        """Close the store; using it afterwards raises ``ClosedResourceError``."""
        async with self._lifecycle:
            self._closed = True
            if self._open_:
                self._open_ = False
                with anyio.CancelScope(shield=True):
                    await self._close()

    async def _ready(self) -> None:
        if self._open_:
            return
        async with self._lifecycle:
            if self._closed:
                raise ClosedResourceError(f"{self!r} was closed; create a new store to reopen it")
            if not self._open_:
                await self._open()
                self._open_ = True

    # -- the EventStore methods ----------------------------------------------------------

    async def append(
        self,
        entity_type: str,
        entity_id: str,
        kind: EventKind,
        payload: JsonObject,
        *,
        expected_version: int | None,
        valid_from: datetime | None = None,
        actor: str = "",
        corrects: int | None = None,
    ) -> Event:
        """See ``EventStore.append``."""
        _check_entity(entity_type, entity_id)
        payload = _json_object(payload)
        if expected_version is not None and expected_version < 0:
            raise ValueError(f"expected_version must be 0 or more, got {expected_version}")
        request = Append(
            entity_type=entity_type,
            entity_id=entity_id,
            kind=EventKind(kind),
            payload=payload,
            expected_version=expected_version,
            valid_from=None if valid_from is None else utc(valid_from, "valid_from"),
            actor=actor,
            corrects=corrects,
        )
        clock = self._clock

        def write(history: Sequence[Event], last_seq: int, last_recorded: datetime) -> Event:
            # Transaction time never runs backwards, even if clocks of writers differ.
            recorded_at = max(utc(clock(), "the store's clock"), last_recorded)
            return next_event(history, request, seq=last_seq + 1, recorded_at=recorded_at)

        await self._ready()
        return await self._write(entity_type, entity_id, write)

    async def current(self, entity_type: str, entity_id: str) -> Event | None:
        """The entity's state now, as known now."""
        return await self._state(entity_type, entity_id, valid_time=self._clock(), known_at=None)

    async def as_of_valid(
        self,
        entity_type: str,
        entity_id: str,
        valid_time: datetime,
        *,
        recorded_at: datetime | None = None,
    ) -> Event | None:
        """The state at ``valid_time``, as known at ``recorded_at`` (default: now)."""
        known = None if recorded_at is None else utc(recorded_at, "recorded_at")
        return await self._state(
            entity_type, entity_id, valid_time=utc(valid_time, "valid_time"), known_at=known
        )

    async def as_of_transaction(
        self,
        entity_type: str,
        entity_id: str,
        recorded_at: datetime,
        *,
        valid_time: datetime | None = None,
    ) -> Event | None:
        """What the store knew at ``recorded_at``: the state at ``valid_time`` (default:
        ``recorded_at``, i.e. what ``current`` returned then)."""
        known = utc(recorded_at, "recorded_at")
        valid = known if valid_time is None else utc(valid_time, "valid_time")
        return await self._state(entity_type, entity_id, valid_time=valid, known_at=known)

    async def history(self, entity_type: str, entity_id: str) -> list[Event]:
        """Every event of the entity, by version: the audit trail."""
        _check_entity(entity_type, entity_id)
        await self._ready()
        return list(await self._load(entity_type, entity_id))

    async def events_since(
        self, after_seq: int, *, limit: int, entity_types: Collection[str] | None = None
    ) -> list[Event]:
        """Up to ``limit`` events with ``seq > after_seq``, by ``seq``; only of
        ``entity_types`` if given."""
        if after_seq < 0:
            raise ValueError(f"after_seq must be 0 or more, got {after_seq}")
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        if isinstance(entity_types, str):
            raise TypeError(
                f"entity_types is a collection of names, got the string {entity_types!r}"
            )
        types = None if entity_types is None else sorted(set(entity_types))
        if types == []:
            return []
        await self._ready()
        return list(await self._since(after_seq, limit, types))

    async def _state(
        self, entity_type: str, entity_id: str, *, valid_time: datetime, known_at: datetime | None
    ) -> Event | None:
        events = await self.history(entity_type, entity_id)
        return state_at(events, valid_time=valid_time, known_at=known_at)

    # -- storage -------------------------------------------------------------------------

    @abc.abstractmethod
    async def _open(self) -> None: ...

    @abc.abstractmethod
    async def _close(self) -> None: ...

    @abc.abstractmethod
    async def _load(self, entity_type: str, entity_id: str) -> Sequence[Event]: ...

    @abc.abstractmethod
    async def _write(self, entity_type: str, entity_id: str, writer: Writer) -> Event:
        """Atomically: read the entity's events and the store's last event, call
        ``writer``, insert what it returns. No other append may interleave."""

    @abc.abstractmethod
    async def _since(
        self, after_seq: int, limit: int, types: Sequence[str] | None
    ) -> Sequence[Event]: ...


_PAYLOAD: TypeAdapter[JsonObject] = TypeAdapter(JsonObject)


def _json_object(payload: object) -> JsonObject:
    """A copy of ``payload`` if it is a JSON object, else TypeError saying what is not."""
    try:
        return _PAYLOAD.validate_python(payload, strict=True)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'payload'}: {e['msg']}" for e in exc.errors()[:3]
        )
        raise TypeError(f"payload must be a JSON object of JSON values ({problems})") from None


def _check_entity(entity_type: object, entity_id: object) -> None:
    for what, value in (("entity_type", entity_type), ("entity_id", entity_id)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{what} must be a non-empty string, got {value!r}")
