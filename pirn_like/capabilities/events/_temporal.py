"""The bi-temporal rules, written once for every store: which event is an entity's
state at a point of valid and transaction time, and which event may come next."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pirn_like.capabilities.events._errors import InvalidEventError, VersionConflictError
from pirn_like.capabilities.events._models import Event, EventKind, JsonObject

__all__ = ["Append", "next_event", "state_at"]


def state_at(
    events: Sequence[Event], *, valid_time: datetime | None, known_at: datetime | None
) -> Event | None:
    """The event holding the entity's state at ``valid_time`` as known at ``known_at``
    (``None``: no limit), or ``None`` where it does not exist (see ``EventStore``)."""
    known = [e for e in events if known_at is None or e.recorded_at <= known_at]
    replaced = {e.corrects for e in known if e.kind is EventKind.CORRECTED}
    live = [
        e
        for e in known
        if e.version not in replaced and (valid_time is None or e.valid_from <= valid_time)
    ]
    if not live:
        return None
    latest = max(live, key=lambda e: (e.valid_from, e.version))
    return None if latest.kind is EventKind.DELETED else latest


@dataclass(frozen=True, slots=True, kw_only=True)
class Append:
    """One append as asked for (times already in UTC)."""

    entity_type: str
    entity_id: str
    kind: EventKind
    payload: JsonObject
    expected_version: int | None
    valid_from: datetime | None
    actor: str
    corrects: int | None


def next_event(
    history: Sequence[Event], append: Append, *, seq: int, recorded_at: datetime
) -> Event:
    """The event ``append`` adds after ``history`` (the entity's events by version), or
    ``VersionConflictError`` / ``InvalidEventError`` saying why it cannot."""
    name = f"{append.entity_type}/{append.entity_id}"
    actual = history[-1].version if history else 0
    if append.expected_version is not None and append.expected_version != actual:
        raise VersionConflictError(
            append.entity_type, append.entity_id, expected=append.expected_version, actual=actual
        )
    kind = append.kind
    if not history and kind is not EventKind.CREATED:
        raise InvalidEventError(
            f"{name} does not exist: its first event must be CREATED, not {kind}"
        )
    if history and kind is EventKind.CREATED:
        raise InvalidEventError(f"{name} already exists (version {actual}): append UPDATED instead")
    valid_from = append.valid_from or recorded_at
    if kind is EventKind.CORRECTED:
        valid_from = append.valid_from or _corrected(name, history, append.corrects).valid_from
    elif append.corrects is not None:
        raise InvalidEventError(f"{name}: only a CORRECTED event names a version it corrects")
    elif (
        kind is not EventKind.CREATED and state_at(history, valid_time=None, known_at=None) is None
    ):
        raise InvalidEventError(
            f"{name} was deleted: it takes no {kind} event (a CORRECTED one can fix its history)"
        )
    return Event.model_construct(
        seq=seq,
        entity_type=append.entity_type,
        entity_id=append.entity_id,
        version=actual + 1,
        kind=kind,
        payload=append.payload,
        valid_from=valid_from,
        recorded_at=recorded_at,
        actor=append.actor,
        corrects=append.corrects,
    )


def _corrected(name: str, history: Sequence[Event], version: int | None) -> Event:
    if version is None or not 1 <= version <= len(history):
        raise InvalidEventError(
            f"{name}: CORRECTED must name the version it corrects (1 to {len(history)}), "
            f"got {version}"
        )
    later = [e.version for e in history if e.corrects == version]
    if later:
        raise InvalidEventError(
            f"{name}: version {version} was already corrected by version {later[0]}; "
            f"correct version {later[0]} instead"
        )
    return history[version - 1]
