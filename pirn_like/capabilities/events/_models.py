"""The event store's records: ``Event`` (what is stored), ``WriteRequest`` (what a
writer asks for) and the closed sets ``EventKind`` and ``ReadMode``."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue, model_validator

__all__ = ["Event", "EventKind", "JsonObject", "ReadMode", "WriteRequest"]

JsonObject = dict[str, JsonValue]
"""An event's payload: a JSON object, the entity's whole state from ``valid_from`` on."""

_Name = Annotated[str, Field(min_length=1)]


class EventKind(StrEnum):
    """What an event does to its entity."""

    CREATED = "CREATED"
    """The entity's first event (version 1)."""
    UPDATED = "UPDATED"
    """A new state from ``valid_from`` on."""
    CORRECTED = "CORRECTED"
    """Replaces the version named by ``corrects`` (a fix, often back-dated)."""
    DELETED = "DELETED"
    """The entity ends at ``valid_from``."""


class ReadMode(StrEnum):
    """Which question ``StoreRead`` asks."""

    CURRENT = "current"
    AS_OF_VALID = "as_of_valid"
    AS_OF_TRANSACTION = "as_of_transaction"
    HISTORY = "history"


class Event(BaseModel):
    """One immutable fact about an entity, as the store recorded it.

    ``version`` counts the entity's events from 1. ``valid_from`` is valid time (when
    the fact holds in the world), ``recorded_at`` transaction time (when the store
    learnt it; assigned by the store). ``seq`` is the event's position in the whole
    store: strictly increasing in the order appends committed, so a reader that has
    seen every event up to ``seq`` never misses one committed later.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int
    entity_type: str
    entity_id: str
    version: int
    kind: EventKind
    payload: JsonObject
    valid_from: AwareDatetime
    recorded_at: AwareDatetime
    actor: str = ""
    corrects: int | None = None
    """For ``CORRECTED``: the version this event replaces."""

    @property
    def key(self) -> str:
        """``<entity_type>/<entity_id>@<version>``: unique in a store, an idempotency key."""
        return f"{self.entity_type}/{self.entity_id}@{self.version}"


class WriteRequest(BaseModel):
    """One append, as a knot input or a webhook body.

    ``expected_version`` is the version the writer last saw (0 for a new entity);
    ``None`` appends whatever the entity's version is (no concurrency check).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    entity_type: _Name
    entity_id: _Name
    kind: EventKind
    payload: JsonObject = Field(default_factory=dict)
    expected_version: Annotated[int, Field(ge=0)] | None
    valid_from: AwareDatetime | None = None
    actor: str = ""
    corrects: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _corrects_only_corrections(self) -> WriteRequest:
        if (self.kind is EventKind.CORRECTED) != (self.corrects is not None):
            raise ValueError("corrects (the version replaced) is given exactly for CORRECTED")
        return self


def utc(moment: datetime, what: str) -> datetime:
    """``moment`` in UTC; ValueError naming ``what`` if it has no time zone."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(
            f"{what} must be time-zone aware, got {moment.isoformat()!r}; "
            "e.g. datetime(2026, 1, 1, tzinfo=UTC)"
        )
    return moment.astimezone(UTC)
