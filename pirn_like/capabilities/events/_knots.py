"""The event store's knots: ``StoreWrite``, ``StoreCorrect`` and ``StoreRead``.

The store is a constructor keyword, not an input: its ``identity`` enters the knot's
config hash (where the effect went), and the knot's output is the event(s) written or
read, so its output hash names the exact event versions later knots used.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter

from pirn_like._errors import WiringError
from pirn_like.capabilities.events._models import Event, EventKind, ReadMode, WriteRequest, utc
from pirn_like.capabilities.events._protocol import EventStore
from pirn_like.core._config import KnotConfig
from pirn_like.core._knot import Knot, Registrar

__all__ = ["StoreCorrect", "StoreRead", "StoreWrite"]

_WRITE_FIELDS = frozenset(WriteRequest.model_fields)
_MOMENT: TypeAdapter[datetime] = TypeAdapter(datetime)


class _StoreKnot(Knot):
    """A knot over an ``EventStore`` given as ``store=``."""

    store: EventStore

    def __init__(
        self,
        *,
        store: EventStore,
        _config: KnotConfig | None = None,
        tapestry: Registrar | None = None,
        **inputs: Any,
    ) -> None:
        node = f"{type(self).__name__} {getattr(_config, 'id', '?')!r}"
        if not isinstance(getattr(store, "identity", None), str):
            raise WiringError(f"{node}: store= must be an EventStore, got {store!r}")
        self.store = store
        self._check(node, set(inputs))
        super().__init__(_config=_config, tapestry=tapestry, **inputs)

    def _check(self, node: str, given: set[str]) -> None:
        """Raise a WiringError if the inputs ``given`` do not make a request."""

    def identity_settings(self) -> dict[str, object]:
        return {**super().identity_settings(), "store": self.store.identity}


def _check_entity(node: str, given: set[str]) -> None:
    named = {"entity_type", "entity_id"} & given
    if "of" in given and named:
        raise WiringError(f"{node}: give either of= (an Event) or entity_type= and entity_id=")
    if "of" not in given and len(named) != 2:
        raise WiringError(f"{node}: needs entity_type= and entity_id= (or of=, an Event)")


def _entity(of: Event | None, entity_type: str | None, entity_id: str | None) -> tuple[str, str]:
    if of is not None:
        event = Event.model_validate(of)
        return event.entity_type, event.entity_id
    # Both are given when of= is not: checked when the knot was built.
    assert entity_type is not None
    assert entity_id is not None
    return entity_type, entity_id


def _moment(value: datetime | str | None, what: str) -> datetime | None:
    return None if value is None else utc(_MOMENT.validate_python(value), what)


async def _append(store: EventStore, request: WriteRequest) -> Event:
    return await store.append(
        request.entity_type,
        request.entity_id,
        request.kind,
        request.payload,
        expected_version=request.expected_version,
        valid_from=request.valid_from,
        actor=request.actor,
        corrects=request.corrects,
    )


class StoreWrite(_StoreKnot):
    """Append one event; outputs the ``Event`` written.

    Give ``request=`` (a ``WriteRequest``, or a dict of its fields, e.g. a webhook
    body) or the fields themselves: ``entity_type``, ``entity_id``, ``kind``,
    ``expected_version`` (required; ``None`` skips the check), ``payload``,
    ``valid_from``, ``actor``, ``corrects``. A stale ``expected_version`` fails the
    knot with ``VersionConflictError`` naming the expected and actual versions.
    """

    def _check(self, node: str, given: set[str]) -> None:
        fields = given & _WRITE_FIELDS
        if "request" in given and fields:
            raise WiringError(
                f"{node}: give either request= or its fields, not both: {sorted(fields)}"
            )
        missing = {"entity_type", "entity_id", "kind", "expected_version"} - given
        if "request" not in given and missing:
            raise WiringError(
                f"{node}: needs request= (a WriteRequest) or the fields {sorted(missing)}; "
                "expected_version=None appends without a concurrency check"
            )

    async def process(
        self,
        request: WriteRequest | Mapping[str, Any] | None = None,
        entity_type: str | None = None,
        entity_id: str | None = None,
        kind: EventKind | str | None = None,
        payload: Mapping[str, Any] | None = None,
        expected_version: int | None = None,
        valid_from: datetime | str | None = None,
        actor: str = "",
        corrects: int | None = None,
        **_: Any,
    ) -> Event:
        if request is None:
            request = WriteRequest.model_validate(
                {
                    "entity_type": entity_type,
                    "entity_id": entity_id,
                    "kind": kind,
                    "payload": dict(payload or {}),
                    "expected_version": expected_version,
                    "valid_from": valid_from,
                    "actor": actor,
                    "corrects": corrects,
                }
            )
        elif not isinstance(request, WriteRequest):
            request = WriteRequest.model_validate(request)
        return await _append(self.store, request)


class StoreCorrect(_StoreKnot):
    """Append a ``CORRECTED`` event replacing one version; outputs the ``Event``.

    Name the version with ``of=`` (the ``Event`` to correct, e.g. a ``StoreRead``'s
    output) or ``entity_type``, ``entity_id`` and ``corrects``. ``payload`` is the
    corrected state; ``valid_from`` defaults to the corrected event's (a back-dated
    fix); ``expected_version`` (default ``None``: no check) guards against writers in
    between.
    """

    def _check(self, node: str, given: set[str]) -> None:
        _check_entity(node, given)
        if ("of" in given) == ("corrects" in given):
            raise WiringError(
                f"{node}: name the version to correct with of= or corrects=, one of them"
            )
        if "payload" not in given:
            raise WiringError(f"{node}: needs payload= (the corrected state)")

    async def process(
        self,
        payload: Mapping[str, Any],
        of: Event | None = None,
        entity_type: str | None = None,
        entity_id: str | None = None,
        corrects: int | None = None,
        expected_version: int | None = None,
        valid_from: datetime | str | None = None,
        actor: str = "",
        **_: Any,
    ) -> Event:
        kind_, id_ = _entity(of, entity_type, entity_id)
        version = Event.model_validate(of).version if of is not None else corrects
        request = WriteRequest(
            entity_type=kind_,
            entity_id=id_,
            kind=EventKind.CORRECTED,
            payload=dict(payload),
            expected_version=expected_version,
            valid_from=_moment(valid_from, "valid_from"),
            actor=actor,
            corrects=version,
        )
        return await _append(self.store, request)


class StoreRead(_StoreKnot):
    """Read an entity: ``mode`` is ``current`` (default), ``as_of_valid`` (input
    ``valid_time``; optional ``recorded_at``), ``as_of_transaction`` (input
    ``recorded_at``; optional ``valid_time``) or ``history``.

    Outputs the ``Event`` holding the state (``None`` if the entity does not exist
    then), or for ``history`` the list of every event. Name the entity with
    ``entity_type=`` and ``entity_id=``, or ``of=`` an ``Event`` (e.g. a
    ``StoreWrite``'s output: the read then runs after that write). Do not memoize a
    ``current`` read: the store changes under it.
    """

    def __init__(
        self,
        *,
        store: EventStore,
        mode: ReadMode | str = ReadMode.CURRENT,
        _config: KnotConfig | None = None,
        tapestry: Registrar | None = None,
        **inputs: Any,
    ) -> None:
        try:
            self.mode = ReadMode(mode)
        except ValueError:
            choices = ", ".join(m.value for m in ReadMode)
            raise WiringError(
                f"StoreRead {getattr(_config, 'id', '?')!r}: mode must be one of {choices}; "
                f"got {mode!r}"
            ) from None
        super().__init__(store=store, _config=_config, tapestry=tapestry, **inputs)

    def _check(self, node: str, given: set[str]) -> None:
        _check_entity(node, given)
        times = {"valid_time", "recorded_at"} & given
        needed = {
            ReadMode.AS_OF_VALID: "valid_time",
            ReadMode.AS_OF_TRANSACTION: "recorded_at",
        }.get(self.mode)
        if needed is None and times:
            raise WiringError(f"{node}: mode {self.mode.value!r} takes no {sorted(times)}")
        if needed is not None and needed not in times:
            raise WiringError(f"{node}: mode {self.mode.value!r} needs the input {needed}=")

    def identity_settings(self) -> dict[str, object]:
        return {**super().identity_settings(), "mode": self.mode.value}

    async def process(
        self,
        of: Event | None = None,
        entity_type: str | None = None,
        entity_id: str | None = None,
        valid_time: datetime | str | None = None,
        recorded_at: datetime | str | None = None,
        **_: Any,
    ) -> Event | list[Event] | None:
        kind_, id_ = _entity(of, entity_type, entity_id)
        valid = _moment(valid_time, "valid_time")
        known = _moment(recorded_at, "recorded_at")
        match self.mode:
            case ReadMode.CURRENT:
                return await self.store.current(kind_, id_)
            case ReadMode.HISTORY:
                return await self.store.history(kind_, id_)
            case ReadMode.AS_OF_VALID:
                assert valid is not None  # checked when built
                return await self.store.as_of_valid(kind_, id_, valid, recorded_at=known)
            case ReadMode.AS_OF_TRANSACTION:
                assert known is not None  # checked when built
                return await self.store.as_of_transaction(kind_, id_, known, valid_time=valid)
