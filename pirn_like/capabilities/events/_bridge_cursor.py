"""Bridge cursors in memory and in SQL (SQLite, PostgreSQL): a ``bridge_cursors`` table
with one row per bridge name, usually in the event store's own database."""

from __future__ import annotations

import functools
import re
import sqlite3
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Self

import anyio

from pirn_like._errors import BackendError
from pirn_like.backends._closing import closing_on_error
from pirn_like.backends._postgres import open_pool_session
from pirn_like.backends._sql import (
    POSTGRES,
    SQLITE,
    Dialect,
    SerialSession,
    Session,
    database_path,
    parse_url,
)
from pirn_like.backends._sqlite import use_wal
from pirn_like.backends._url import redact
from pirn_like.capabilities.events._bridge_lifecycle import LazyResource
from pirn_like.capabilities.events._bridge_protocol import BridgeCursor
from pirn_like.capabilities.events._sqlite import _ThreadedConnection

__all__ = ["MemoryBridgeCursor", "SQLBridgeCursor", "bridge_cursor_from_url"]

_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}\Z")
_SCHEMA_LOCK = "SELECT pg_advisory_xact_lock(8100050513587334101)"
"""Concurrent ``CREATE TABLE IF NOT EXISTS`` can collide in PostgreSQL: take turns."""


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f"a bridge cursor name must be a non-empty string, got {name!r}")
    return name


def _check_seq(seq: object) -> int:
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise ValueError(f"a bridge cursor position must be an int >= 0, got {seq!r}")
    return seq


class MemoryBridgeCursor:
    """Cursors in this process's memory: for tests and demos (a restart starts over)."""

    identity = "memory"

    def __init__(self) -> None:
        self._positions: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"MemoryBridgeCursor({self._positions!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def load(self, name: str) -> int:
        return self._positions.get(_check_name(name), 0)

    async def save(self, name: str, seq: int) -> None:
        name, seq = _check_name(name), _check_seq(seq)
        self._positions[name] = max(seq, self._positions.get(name, 0))


class SQLBridgeCursor(LazyResource):
    """Cursors in a SQL table: ``sqlite:///path.db`` (no extra needed; asyncio and trio)
    or ``postgresql://user:password@host/db`` (``pip install 'pirn-like[postgres]'``,
    asyncio only).

    Point it at the event store's database to keep the position next to the events.
    The table (``table``, default ``bridge_cursors``) is created on first use with the
    columns ``name`` (primary key) and ``seq``. Opens lazily; ``busy_timeout`` is how
    long a SQLite write waits for another writer.
    """

    def __init__(
        self, url: str, *, table: str = "bridge_cursors", busy_timeout: float = 10.0
    ) -> None:
        parsed = parse_url(url, ("sqlite", "postgresql", "postgres"), type(self).__name__)
        if not isinstance(table, str) or not _TABLE_NAME.match(table):
            raise ValueError(
                f"SQLBridgeCursor: table must be a plain SQL identifier, got {table!r}"
            )
        self._url = url
        self._sqlite = parsed.scheme == "sqlite"
        self._path = (
            database_path(url, "sqlite", type(self).__name__, example="events.db")
            if self._sqlite
            else ""
        )
        self._dialect: Dialect = SQLITE if self._sqlite else POSTGRES
        self.table = table
        self.busy_timeout = busy_timeout
        self._session: Session | None = None
        super().__init__()

    @property
    def identity(self) -> str:
        """The database (URL redacted) and table."""
        return f"{redact(self._url)}#{self.table}"

    def __repr__(self) -> str:
        return f"SQLBridgeCursor({self.identity!r})"

    async def load(self, name: str) -> int:
        name = _check_name(name)
        async with self._using("read") as session:
            rows = await session.fetch(
                self._dialect.sql(f"SELECT seq FROM {self.table} WHERE name = ?"), (name,)
            )
        return int(rows[0][0]) if rows else 0

    async def save(self, name: str, seq: int) -> None:
        name, seq = _check_name(name), _check_seq(seq)
        upsert = (
            f"INSERT INTO {self.table} (name, seq) VALUES (?, ?) ON CONFLICT (name) "
            f"DO UPDATE SET seq = excluded.seq WHERE excluded.seq > {self.table}.seq"
        )
        async with self._using("write") as session, session.transaction() as tx:
            await tx.execute(self._dialect.sql(upsert), (name, seq))

    async def _connect(self) -> None:
        if self._sqlite:
            session: Session = await self._open_sqlite()
        else:
            session = await open_pool_session(
                self._url, owner=type(self).__name__, min_size=1, max_size=2
            )
        async with closing_on_error(session.aclose), session.transaction() as tx:
            if not self._sqlite:
                await tx.execute(_SCHEMA_LOCK)
            await tx.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table} "
                "(name TEXT PRIMARY KEY, seq BIGINT NOT NULL)"
            )
        self._session = session

    async def _disconnect(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.aclose()

    async def _open_sqlite(self) -> SerialSession:
        # The standard library's sqlite3 in worker threads, as SQLiteEventStore uses it:
        # no extra needed, and it works on trio (aiosqlite is asyncio-only).
        raw = await anyio.to_thread.run_sync(
            functools.partial(
                sqlite3.connect,
                self._path,
                isolation_level=None,
                timeout=self.busy_timeout,
                check_same_thread=False,
            )
        )
        session = SerialSession(
            _ThreadedConnection(raw), begin="BEGIN IMMEDIATE", errors=(sqlite3.Error,)
        )
        async with closing_on_error(session.aclose):
            await use_wal(session, busy_timeout=self.busy_timeout)
        return session

    @asynccontextmanager
    async def _using(self, action: str) -> AsyncGenerator[Session]:
        try:
            await self._ready()
        except (OSError, BackendError) as exc:
            raise BackendError(f"{self!r} could not open its database: {exc}") from exc
        session = self._session
        assert session is not None
        try:
            yield session
        except session.errors as exc:
            raise BackendError(f"{self!r} could not {action} a cursor: {exc}") from exc


def bridge_cursor_from_url(url: str) -> BridgeCursor:
    """A cursor store for ``url``: ``sqlite:///``, ``postgresql://``, ``valkey://`` (or
    ``redis://``, ``valkeys://``, ``rediss://``), or ``memory://``."""
    scheme = url.partition("://")[0].lower() if isinstance(url, str) else ""
    if scheme == "memory":
        return MemoryBridgeCursor()
    if scheme in ("valkey", "valkeys", "redis", "rediss"):
        from pirn_like.capabilities.events._bridge_cursor_valkey import ValKeyBridgeCursor

        return ValKeyBridgeCursor(url)
    if scheme in ("sqlite", "postgresql", "postgres"):
        return SQLBridgeCursor(url)
    raise ValueError(
        f"no bridge cursor store for {redact(url) if isinstance(url, str) else url!r}; use "
        "sqlite:///path.db, postgresql://..., valkey://host:port/db or memory://"
    )
