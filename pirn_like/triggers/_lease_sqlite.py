"""Leases in a SQLite file (aiosqlite): processes on one machine."""

from __future__ import annotations

import os
from typing import Self

from pirn_like.backends._sql import SQLITE, Session, database_path
from pirn_like.backends._sqlite import open_sqlite
from pirn_like.triggers._lease_sql import LeaseDialect, SQLLease

__all__ = ["SQLiteLease"]

# julianday('now') has millisecond precision; 2440587.5 is the Unix epoch's day.
_SQLITE = LeaseDialect(
    SQLITE, now_us="CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)"
)


class SQLiteLease(SQLLease):
    """A ``Lease`` in the table ``pirn_like_leases`` of a SQLite file, which may be the
    history's (``pip install 'pirn-like[sqlite]'``); needs asyncio.

    For processes on one machine: expiry is judged by its clock. ``busy_timeout``
    bounds how long a change waits for another writer of the file (default: a third
    of ``ttl``).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        name: str,
        *,
        holder: str | None = None,
        ttl: float = 15.0,
        busy_timeout: float | None = None,
    ) -> None:
        self.path = os.fspath(path)
        super().__init__(name, holder=holder, ttl=ttl, url=f"sqlite:///{self.path}", sql=_SQLITE)
        self.busy_timeout = self.ttl / 3 if busy_timeout is None else busy_timeout

    @classmethod
    def from_url(cls, url: str, name: str, *, holder: str | None = None, ttl: float = 15.0) -> Self:
        """``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``."""
        path = database_path(url, "sqlite", cls.__name__, example="runs.db")
        return cls(path, name, holder=holder, ttl=ttl)

    async def _open_session(self) -> Session:
        return await open_sqlite(
            self.path, busy_timeout=self.busy_timeout, owner=type(self).__name__
        )
