"""Emitters observe runs: events go out to logs, buses and traces."""

from pirn_like._exports import publish
from pirn_like.emitters._memory import MemoryEmitter

__all__ = ["MemoryEmitter"]

publish(__name__, globals(), __all__)
