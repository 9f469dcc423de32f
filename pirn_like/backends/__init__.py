"""Backends: knot definitions (TapestryStore), runs and lineage (RunHistory), values (DataStore)."""

from pirn_like._exports import publish
from pirn_like.backends._memory_data import InMemoryDataStore
from pirn_like.backends._memory_history import InMemoryHistory
from pirn_like.backends._memory_store import InMemoryStore

__all__ = ["InMemoryDataStore", "InMemoryHistory", "InMemoryStore"]

publish(__name__, globals(), __all__)
