"""What the PostgreSQL backends share: an asyncpg pool behind the ``Session`` seam."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from pirn_like._errors import MissingExtraError
from pirn_like.backends._sql import Statements

if TYPE_CHECKING:
    import asyncpg

__all__ = ["PostgresPoolSession", "open_pool_session"]


async def open_pool_session(
    dsn: str, *, owner: str, min_size: int, max_size: int, **connect_options: Any
) -> PostgresPoolSession:
    """A session over a new pool of connections to ``dsn`` (``connect_options`` go to
    ``asyncpg.create_pool``). ``MissingExtraError`` naming ``owner`` without asyncpg."""
    try:
        import asyncpg
    except ImportError as exc:
        raise MissingExtraError(owner, "postgres", "asyncpg") from exc
    pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, **connect_options)
    return PostgresPoolSession(
        pool, errors=(asyncpg.PostgresError, asyncpg.InterfaceError, OSError)
    )


class PostgresPoolSession:
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
