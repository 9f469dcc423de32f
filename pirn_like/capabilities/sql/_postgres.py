"""Loads into PostgreSQL, through an asyncpg pool (asyncio only)."""

from __future__ import annotations

from typing import Any, ClassVar

from pirn_like.backends._postgres import open_pool_session
from pirn_like.backends._sql import Session
from pirn_like.backends._url import redact
from pirn_like.capabilities.sql._dialect import POSTGRES_LOADS, SqlDialect
from pirn_like.capabilities.sql._session import SessionTarget

__all__ = ["PostgresTarget"]


class PostgresTarget(SessionTarget):
    """A PostgreSQL database as a ``SqlTarget`` (``pip install 'pirn-like[postgres]'``).

    ``dsn`` is a ``postgresql://`` URL; ``connect_options`` go to
    ``asyncpg.create_pool``. asyncpg needs asyncio.
    """

    _dialect: ClassVar[SqlDialect] = POSTGRES_LOADS

    def __init__(self, dsn: str, *, max_connections: int = 4, **connect_options: Any) -> None:
        self._dsn = dsn
        self._max_connections = max_connections
        self._connect_options = connect_options
        super().__init__(redact(dsn))

    async def _open(self) -> Session:
        return await open_pool_session(
            self._dsn,
            owner="PostgresTarget",
            min_size=1,
            max_size=self._max_connections,
            **self._connect_options,
        )
