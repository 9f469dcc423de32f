"""Runs and lineage in PostgreSQL (asyncpg, with a connection pool)."""

from __future__ import annotations

from typing import Any, Self

from pirn_like.backends._postgres import PostgresPoolSession, open_pool_session
from pirn_like.backends._sql import POSTGRES, SQLHistory, parse_url

__all__ = ["PostgresHistory"]


class PostgresHistory(SQLHistory):
    """A RunHistory in PostgreSQL (``pip install 'pirn-like[postgres]'``); needs asyncio.

    ``dsn`` is a ``postgresql://`` (or ``postgres://``) URL, passed to asyncpg as
    is, so its query options work too (``?host=/socket/dir``, ``?sslmode=...``).
    Any number of processes may share one database; the tables are created on first
    open. ``min_size`` and ``max_size`` bound the connection pool.
    """

    extra = "postgres"

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

    async def _open(self) -> PostgresPoolSession:
        return await open_pool_session(
            self._url, owner=type(self).__name__, min_size=self.min_size, max_size=self.max_size
        )
