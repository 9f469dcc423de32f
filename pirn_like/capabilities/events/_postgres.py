"""``PostgresEventStore``: the event store on PostgreSQL (asyncpg; asyncio only).

A sequence could hand out ``seq`` 10 to one append and 11 to another that commits
first; a reader that saw 11 and moved its cursor past it would skip 10 for good.
So each append first takes a transaction-scoped advisory lock (one per table): appends
take turns until they commit, ``seq`` is the last one + 1, and an event is visible
before the next append can even take its number. The unique (entity_type,
entity_id, version) constraint stays as the backstop.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pirn_like.backends._postgres import PostgresPoolSession, open_pool_session
from pirn_like.backends._sql import POSTGRES, parse_url
from pirn_like.backends._url import redact
from pirn_like.capabilities.events._engine import Clock
from pirn_like.capabilities.events._sql import SQLEventStore, check_table

__all__ = ["PostgresEventStore", "advisory_lock_key"]


def advisory_lock_key(table: str) -> int:
    """The advisory lock appends to ``table`` take (a signed 64-bit integer)."""
    digest = hashlib.sha256(f"pirn_like.events:{table}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PostgresEventStore(SQLEventStore):
    """An ``EventStore`` in a PostgreSQL database (``pip install 'pirn-like[postgres]'``),
    in the table ``table``; ``pool_options`` go to ``asyncpg.create_pool``. ``clock``
    gives ``recorded_at`` (default: UTC now on this machine)."""

    def __init__(
        self,
        url: str,
        *,
        table: str = "pirn_like_events",
        min_size: int = 1,
        max_size: int = 10,
        clock: Clock | None = None,
        **pool_options: Any,
    ) -> None:
        parse_url(url, ("postgresql", "postgres"), type(self).__name__)
        self._url = url
        self._pool = {"min_size": min_size, "max_size": max_size, **pool_options}
        super().__init__(
            dialect=POSTGRES,
            key_type="BIGINT",
            write_lock=(f"SELECT pg_advisory_xact_lock({advisory_lock_key(check_table(table))})",),
            connect=self._open_session,
            identity=f"{redact(url)}#{table}",
            table=table,
            clock=clock,
        )

    async def _open_session(self) -> PostgresPoolSession:
        return await open_pool_session(self._url, owner=type(self).__name__, **self._pool)
