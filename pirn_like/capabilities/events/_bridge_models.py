"""What a push reports: ``PushSummary``, the ``BridgePush`` knot's output."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["PushSummary"]


class PushSummary(BaseModel):
    """One push: which events it read and which it delivered.

    The bridge read every event with ``from_seq < seq <= to_seq`` (of its entity types),
    sent ``sent`` of them (the rest, ``skipped``, failed its ``where`` predicate) and
    moved its cursor to ``to_seq``. ``keys_hash`` is the content hash of the sent events'
    idempotency keys in order, so the summary's own hash names exactly the event
    versions delivered. No wall-clock time: pushing the same events gives the same
    summary.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    bridge: str
    sink: str
    from_seq: int
    to_seq: int
    sent: int
    skipped: int
    keys_hash: str
