"""What the SQLite backends share: a file opened through aiosqlite, behind the
``Session`` seam."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import anyio
import tenacity

from pirn_like._errors import MissingExtraError
from pirn_like.backends._closing import closing_on_error
from pirn_like.backends._sql import SerialSession

if TYPE_CHECKING:
    import aiosqlite

__all__ = ["SQLiteConnection", "open_sqlite", "use_wal"]


async def open_sqlite(path: str, *, busy_timeout: float, owner: str) -> SerialSession:
    """A session on the SQLite file ``path``, in WAL mode: each transaction takes the
    write lock up front (``BEGIN IMMEDIATE``) and waits up to ``busy_timeout`` seconds
    for another writer. ``MissingExtraError`` naming ``owner`` without aiosqlite."""
    try:
        import aiosqlite
    except ImportError as exc:
        raise MissingExtraError(owner, "sqlite", "aiosqlite") from exc
    import sqlite3

    # Autocommit mode: transactions are begun explicitly, taking the lock up front.
    # ``timeout`` is SQLite's busy timeout: how long a statement waits for a lock.
    # Opened here rather than by aiosqlite.connect: when that fails, aiosqlite's thread
    # reports to the event loop later, when it may be gone.
    raw = await anyio.to_thread.run_sync(
        functools.partial(
            sqlite3.connect,
            path,
            isolation_level=None,
            timeout=busy_timeout,
            check_same_thread=False,
        )
    )
    connection = aiosqlite.Connection(lambda: raw, iter_chunk_size=64)
    # aiosqlite's worker thread is not a daemon, so a backend never closed (a script
    # ending without `async with`) would keep the interpreter from exiting. Each write
    # is awaited, so nothing is in flight once the program's main code has returned.
    connection._thread.daemon = True
    conn = await connection
    session = SerialSession(
        SQLiteConnection(conn), begin="BEGIN IMMEDIATE", errors=(sqlite3.Error,)
    )
    async with closing_on_error(session.aclose):
        await use_wal(session, busy_timeout=busy_timeout)
    return session


async def use_wal(session: SerialSession, *, busy_timeout: float) -> None:
    """Switch the session's file to WAL mode (readers never wait for the writer)."""
    # Switching a fresh file to WAL can fail at once with "database is locked" while
    # another connection does the same (SQLite skips the busy handler there).
    async for attempt in tenacity.AsyncRetrying(
        retry=tenacity.retry_if_exception(_is_locked),
        stop=tenacity.stop_after_delay(busy_timeout),
        wait=tenacity.wait_exponential(multiplier=0.005, max=0.2),
        sleep=anyio.sleep,
        reraise=True,
    ):
        with attempt:
            await session.fetch("PRAGMA journal_mode = WAL")
    await session.fetch("PRAGMA synchronous = NORMAL")


def _is_locked(exc: BaseException) -> bool:
    return "database is locked" in str(exc)


class SQLiteConnection:
    """An aiosqlite connection as a ``SerialConnection``."""

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
