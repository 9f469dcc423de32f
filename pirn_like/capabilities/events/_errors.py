"""What the event store raises on purpose.

::

    PirnLikeError
    └── EventStoreError
        ├── VersionConflictError (ValueError)  a write named a stale expected version
        └── InvalidEventError (ValueError)     an event does not fit the entity's history
"""

from __future__ import annotations

from pirn_like._errors import PirnLikeError

__all__ = ["EventStoreError", "InvalidEventError", "VersionConflictError"]


class EventStoreError(PirnLikeError):
    """Base class of the event store's own errors."""


class VersionConflictError(EventStoreError, ValueError):
    """An append's ``expected_version`` is not the entity's version: someone else wrote
    in between. Read the entity again and retry on top of what is there now."""

    def __init__(self, entity_type: str, entity_id: str, *, expected: int, actual: int) -> None:
        self.entity_type = entity_type
        self.entity_id = entity_id
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"stale write to {entity_type}/{entity_id}: expected version {expected}, but it "
            f"is at version {actual}; read it again and write on top of version {actual}"
        )

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only arguments: rebuild through a helper so the error pickles.
        return (
            _version_conflict,
            (self.entity_type, self.entity_id, self.expected, self.actual),
        )


def _version_conflict(
    entity_type: str, entity_id: str, expected: int, actual: int
) -> VersionConflictError:
    return VersionConflictError(entity_type, entity_id, expected=expected, actual=actual)


class InvalidEventError(EventStoreError, ValueError):
    """An event that cannot follow the entity's history: ``UPDATED`` before
    ``CREATED``, a second ``CREATED``, a correction of an unknown version, ..."""
