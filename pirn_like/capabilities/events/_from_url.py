"""``event_store_from_url``: a store chosen by URL."""

from __future__ import annotations

from typing import Any

from pirn_like.backends._url import BackendURL, redact
from pirn_like.capabilities.events._engine import StoreEngine
from pirn_like.capabilities.events._memory import InMemoryEventStore
from pirn_like.capabilities.events._postgres import PostgresEventStore
from pirn_like.capabilities.events._sqlite import SQLiteEventStore

__all__ = ["event_store_from_url"]


def event_store_from_url(url: str, **options: Any) -> StoreEngine:
    """``sqlite:///events.db`` (embedded), ``postgresql://...`` or ``memory://name``;
    ``options`` go to the store's constructor. Nothing is opened yet."""
    scheme = BackendURL.parse(url).scheme
    if scheme == "sqlite":
        return SQLiteEventStore.from_url(url, **options)
    if scheme in ("postgresql", "postgres"):
        return PostgresEventStore(url, **options)
    if scheme == "memory":
        return InMemoryEventStore(BackendURL.parse(url).host or "default", **options)
    raise ValueError(
        f"no event store for {redact(url)!r}: use sqlite:///events.db, "
        "postgresql://user@host/db or memory://name"
    )
