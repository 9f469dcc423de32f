"""Leases in PostgreSQL (asyncpg): processes on any number of machines."""

from __future__ import annotations

from typing import Self

from pirn_like.backends._postgres import open_pool_session
from pirn_like.backends._sql import POSTGRES, Session, parse_url
from pirn_like.triggers._lease_sql import LeaseDialect, SQLLease

__all__ = ["PostgresLease"]

_POSTGRES = LeaseDialect(
    POSTGRES,
    now_us="CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT)",
    lock_row=" FOR UPDATE",
)


class PostgresLease(SQLLease):
    """A ``Lease`` in the table ``pirn_like_leases`` of a PostgreSQL database, which may
    be the history's (``pip install 'pirn-like[postgres]'``); needs asyncio.

    Expiry is judged by the server's clock, so the processes' clocks may differ.
    ``dsn`` is a ``postgresql://`` URL, passed to asyncpg as is.
    """

    def __init__(
        self, dsn: str, name: str, *, holder: str | None = None, ttl: float = 15.0
    ) -> None:
        parse_url(dsn, ("postgresql", "postgres"), type(self).__name__)
        self.dsn = dsn
        super().__init__(name, holder=holder, ttl=ttl, url=dsn, sql=_POSTGRES)

    @classmethod
    def from_url(cls, url: str, name: str, *, holder: str | None = None, ttl: float = 15.0) -> Self:
        """``postgresql://user:password@host:port/database`` (or ``postgres://``)."""
        return cls(url, name, holder=holder, ttl=ttl)

    async def _open_session(self) -> Session:
        # Two connections: a renewal never waits behind a slow value write.
        return await open_pool_session(
            self.dsn,
            owner=type(self).__name__,
            min_size=1,
            max_size=2,
            command_timeout=max(self.ttl / 3, 1.0),
        )
