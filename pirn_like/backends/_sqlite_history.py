"""Runs and lineage in a SQLite file (aiosqlite)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Self

import anyio

from pirn_like._errors import MissingExtraError
from pirn_like.backends._sql import SQLITE, SerialSession, SQLHistory, parse_url

if TYPE_CHECKING:
    import aiosqlite

__all__ = ["SQLiteHistory"]


class SQLiteHistory(SQLHistory):
    """A RunHistory in a SQLite file (``pip install 'pirn-like[sqlite]'``); needs asyncio.

    Several processes may record into the same file at once: the database runs in
    WAL mode, each write takes the write lock up front (``BEGIN IMMEDIATE``) and
    waits up to ``busy_timeout`` seconds for another writer to finish. ``":memory:"``
    keeps everything in this process until it is closed.
    """

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 30.0) -> None:
        if busy_timeout < 0:
            raise ValueError(f"busy_timeout must be at least 0 seconds, got {busy_timeout}")
        self.path = os.fspath(path)
        self.busy_timeout = busy_timeout
        super().__init__(dialect=SQLITE, url=f"sqlite:///{self.path}", connect=self._open)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Self:
        """``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` or
        ``sqlite:///:memory:``; ``options`` go to the constructor."""
        parsed = parse_url(url, ("sqlite",), cls.__name__)
        if not parsed.path:
            raise ValueError(f"{url!r} names no database file; e.g. sqlite:///runs.db")
        return cls(parsed.path, **options)

    async def _open(self) -> SerialSession:
        try:
            import aiosqlite
        except ImportError as exc:
            raise MissingExtraError(type(self).__name__, "sqlite", "aiosqlite") from exc
        import sqlite3

        # Autocommit mode: transactions are begun explicitly, taking the lock up front.
        # ``timeout`` is SQLite's busy timeout: how long a statement waits for a lock.
        pending = aiosqlite.connect(self.path, isolation_level=None, timeout=self.busy_timeout)
        try:
            conn = await pending
        except BaseException:
            # aiosqlite stops its worker thread without waiting; a thread still running
            # when the event loop closes fails there. Wait for it here.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(pending._thread.join)
            raise
        try:
            await conn.execute_fetchall("PRAGMA journal_mode = WAL")
            await conn.execute_fetchall("PRAGMA synchronous = NORMAL")
        except BaseException:
            with anyio.CancelScope(shield=True):
                await conn.close()
            raise
        return SerialSession(_Connection(conn), begin="BEGIN IMMEDIATE", errors=(sqlite3.Error,))


class _Connection:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def fetch(self, sql: str, params: Sequence[object] = ()) -> Sequence[Sequence[Any]]:
        return list(await self._conn.execute_fetchall(sql, params))

    async def execute(self, sql: str, params: Sequence[object] = ()) -> None:
        cursor = await self._conn.execute(sql, params)
        await cursor.close()

    async def insert_rows(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        await self._conn.executemany(sql, rows)

    async def close(self) -> None:
        await self._conn.close()
