"""What the bridge raises, under ``PirnLikeError``.

::

    BridgeError                      a push could not be completed (the cursor did not move)
    ├── BridgeSinkError              the sink did not acknowledge a batch
    └── BridgeFilterError (TypeError) a payload predicate cannot compare an event's field
"""

from __future__ import annotations

from pirn_like._errors import PirnLikeError

__all__ = ["BridgeError", "BridgeFilterError", "BridgeSinkError"]


class BridgeError(PirnLikeError):
    """A push could not be completed; the cursor stays at the last acknowledged batch."""


class BridgeSinkError(BridgeError):
    """The sink did not acknowledge a batch (broker down, receiver refusing it, ...)."""


class BridgeFilterError(BridgeError, TypeError):
    """A payload predicate cannot compare an event's field with its value."""
