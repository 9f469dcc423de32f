"""Runs and lineage in PostgreSQL (asyncpg, with a connection pool)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Self

from pirn_like._errors import MissingExtraError
from pirn_like.backends._sql import POSTGRES, SQLHistory, Statements, parse_url

if TYPE_CHECKING:
    import asyncpg

__all__ = ["PostgresHistory"]


class PostgresHistory(SQLHistory):
    """A RunHistory in PostgreSQL (``pip install 'pirn-like[postgres]'``); needs asyncio.

    ``dsn`` is a ``postgresql://`` (or ``postgres://``) URL, passed to asyncpg as
    is, so its query options work too (``?host=/socket/dir``, ``?sslmode=...``).
    Any number of processes may share one database; the tables are created on first
    open. ``min_size`` and ``max_size`` bound the connection pool.
    """

    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 10) -> None:
        if not 0 <= min_size <= max_size or max_size < 1:
            raise ValueError(
                f"need 0 <= min_size <= max_size and max_size >= 1, got {min_size}, {max_size}"
            )
        self.min_size = min_size
        self.max_size = max_size
        super().__init__(dialect=POSTGRES, url=dsn, connect=self._open)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Self:
        """``postgresql://user:password@host:port/database`` (or ``postgres://``);
        ``options`` go to the constructor."""
        parse_url(url, ("postgresql", "postgres"), cls.__name__)
        return cls(url, **options)

    async def _open(self) -> _PoolSession:
        try:
            import asyncpg
        except ImportError as exc:
            raise MissingExtraError(type(self).__name__, "postgres", "asyncpg") from exc
        pool = await asyncpg.create_pool(self._url, min_size=self.min_size, max_size=self.max_size)
        return _PoolSession(pool, errors=(asyncpg.PostgresError, asyncpg.InterfaceError, OSError))


class _PoolSession:
    """A ``Session`` over a pool: each read and each transaction borrows a connection."""

    def __init__(self, pool: asyncpg.Pool, *, errors: tuple[type[Exception], ...]) -> None:
        self._pool = pool
        self.errors = errors

    async def fetch(self, sql: str, params: Sequence[object] = ()) -> Sequence[Sequence[Any]]:
        async with self._pool.acquire() as conn:
            return list(await conn.fetch(sql, *params))

    @asynccontextmanager
    async def transaction(self) -> AsyncGenerator[Statements, None]:
        async with self._pool.acquire() as conn, conn.transaction():
            yield _Connection(conn)

    async def aclose(self) -> None:
        await self._pool.close()


class _Connection:
    def __init__(self, conn: asyncpg.pool.PoolConnectionProxy) -> None:
        self._conn = conn

    async def fetch(self, sql: str, params: Sequence[object] = ()) -> Sequence[Sequence[Any]]:
        return list(await self._conn.fetch(sql, *params))

    async def execute(self, sql: str, params: Sequence[object] = ()) -> None:
        await self._conn.execute(sql, *params)

    async def insert_rows(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        await self._conn.executemany(sql, rows)
