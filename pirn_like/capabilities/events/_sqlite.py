"""``SQLiteEventStore``: the embedded default, in a SQLite file.

The standard library's ``sqlite3`` runs in worker threads (``anyio.to_thread``), so the
store works on asyncio and trio and needs no extra. Appends take SQLite's write lock
up front (``BEGIN IMMEDIATE``): one writer at a time across every process sharing the
file, so ``seq`` order is commit order.
"""

from __future__ import annotations

import functools
import os
import sqlite3
from collections.abc import Sequence
from typing import Any, Self

import anyio

from pirn_like.backends._closing import closing_on_error
from pirn_like.backends._sql import SQLITE, SerialSession, database_path
from pirn_like.backends._sqlite import use_wal
from pirn_like.capabilities.events._engine import Clock
from pirn_like.capabilities.events._sql import SQLEventStore

__all__ = ["SQLiteEventStore"]


class SQLiteEventStore(SQLEventStore):
    """An ``EventStore`` in the SQLite file ``path`` (``":memory:"``: this process
    only), in the table ``table``. Writers in other processes wait up to
    ``busy_timeout`` seconds for the write lock. ``clock`` gives ``recorded_at``
    (default: UTC now)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        table: str = "pirn_like_events",
        busy_timeout: float = 30.0,
        clock: Clock | None = None,
    ) -> None:
        if busy_timeout < 0:
            raise ValueError(f"busy_timeout must be at least 0 seconds, got {busy_timeout}")
        self.path = os.fspath(path)
        self.busy_timeout = busy_timeout
        super().__init__(
            dialect=SQLITE,
            key_type="INTEGER",
            write_lock=(),  # BEGIN IMMEDIATE already holds the file's write lock
            connect=self._open_session,
            identity=f"sqlite:///{self.path}#{table}",
            table=table,
            clock=clock,
        )

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Self:
        """``sqlite:///relative/events.db``, ``sqlite:////absolute/events.db`` or
        ``sqlite:///:memory:``; ``options`` go to the constructor."""
        return cls(database_path(url, "sqlite", cls.__name__, example="events.db"), **options)

    async def _open_session(self) -> SerialSession:
        raw = await anyio.to_thread.run_sync(
            functools.partial(
                sqlite3.connect,
                self.path,
                isolation_level=None,  # transactions are begun explicitly
                timeout=self.busy_timeout,
                check_same_thread=False,  # used from worker threads, one at a time
            )
        )
        session = SerialSession(
            _ThreadedConnection(raw), begin="BEGIN IMMEDIATE", errors=(sqlite3.Error,)
        )
        async with closing_on_error(session.aclose):
            await use_wal(session, busy_timeout=self.busy_timeout)
        return session


class _ThreadedConnection:
    """A ``sqlite3`` connection as a ``SerialConnection``: each call in a worker thread
    (``SerialSession`` lets one task use it at a time)."""

    def __init__(self, raw: sqlite3.Connection) -> None:
        self._raw = raw

    async def fetch(self, sql: str, params: Sequence[object] = ()) -> Sequence[Sequence[Any]]:
        return await anyio.to_thread.run_sync(self._fetch, sql, params)

    def _fetch(self, sql: str, params: Sequence[object]) -> list[Any]:
        cursor = self._raw.execute(sql, params)
        try:
            return cursor.fetchall()
        finally:
            cursor.close()

    async def execute(self, sql: str, params: Sequence[object] = ()) -> None:
        await anyio.to_thread.run_sync(self._fetch, sql, params)

    async def insert_rows(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        await anyio.to_thread.run_sync(self._raw.executemany, sql, rows)

    async def close(self) -> None:
        await anyio.to_thread.run_sync(self._raw.close)
