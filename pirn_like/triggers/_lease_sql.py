"""Leases in a SQL table, written once over the histories' ``Session`` seam.

One row per lease in ``pirn_like_leases``: the holder, the term's token, when the
term expires (microseconds since the epoch, by the database's clock) and the value.
Every change is one transaction that holds the row (SQLite: the write lock taken by
``BEGIN IMMEDIATE``; PostgreSQL: ``SELECT ... FOR UPDATE``), so two processes never
both see the lease free.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pirn_like._errors import SchemaVersionError
from pirn_like.backends._sql import Dialect, Session, migrate_schema
from pirn_like.triggers._lease_store import StoredLease

__all__ = ["LeaseDialect", "SQLLease"]

_MIGRATIONS = (
    (
        "CREATE TABLE pirn_like_leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, "
        "token BIGINT NOT NULL, expires_at_us BIGINT NOT NULL, value TEXT)",
    ),
)


@dataclass(frozen=True, slots=True)
class LeaseDialect:
    """What differs per database: placeholders and locks, its clock, row locking."""

    dialect: Dialect
    now_us: str
    """An expression for the database's current time in microseconds since the epoch."""
    lock_row: str = ""
    """Appended to the SELECT that reads the row inside the transaction."""


class SQLLease(StoredLease):
    """A ``Lease`` in a SQL table; a subclass opens the ``Session``."""

    def __init__(
        self, name: str, *, holder: str | None, ttl: float, url: str, sql: LeaseDialect
    ) -> None:
        super().__init__(name, holder=holder, ttl=ttl, url=url)
        self._sql = sql
        self._session: Session | None = None

    @abstractmethod
    async def _open_session(self) -> Session: ...

    async def _connect(self) -> None:
        try:
            session = await self._open_session()
        except ImportError:  # MissingExtraError: already says what to install
            raise
        except Exception as exc:
            error, cause = self._failure("opening", exc)
            raise error from cause
        self._driver_errors = session.errors
        try:
            await migrate_schema(
                session,
                self._sql.dialect,
                version_table="pirn_like_lease_schema",
                migrations=_MIGRATIONS,
                too_new=self._too_new,
            )
        except BaseException:
            await session.aclose()
            raise
        self._session = session

    async def _disconnect(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.aclose()

    def _too_new(self, found: int) -> SchemaVersionError:
        return SchemaVersionError(
            f"the lease table in {self._shown_url} has schema version {found}; this "
            f"pirn_like supports up to {len(_MIGRATIONS)}: upgrade pirn_like"
        )

    def _q(self, text: str) -> str:
        return self._sql.dialect.sql(text.replace("NOW_US", self._sql.now_us))

    def _open(self) -> Session:
        assert self._session is not None  # _driver checked the lease is open
        return self._session

    async def _take(self, token: int | None) -> int | None:
        ttl_us = self.ttl_ms * 1000
        async with self._open().transaction() as tx:
            await tx.execute(
                self._q(
                    "INSERT INTO pirn_like_leases (name, holder, token, expires_at_us) "
                    "VALUES (?, '', 0, 0) ON CONFLICT (name) DO NOTHING"
                ),
                (self.name,),
            )
            rows = await tx.fetch(
                self._q(
                    "SELECT holder, token, expires_at_us, NOW_US FROM pirn_like_leases "
                    f"WHERE name = ?{self._sql.lock_row}"
                ),
                (self.name,),
            )
            holder, current, expires, now = _row(rows)
            if holder == self.holder and current == token and expires > now:
                new = current  # this holder's unexpired term: extend it
            elif holder == "" or expires <= now:
                new = current + 1  # free or expired: a new term
            else:
                return None
            await tx.execute(
                self._q(
                    "UPDATE pirn_like_leases SET holder = ?, token = ?, expires_at_us = ? "
                    "WHERE name = ?"
                ),
                (self.holder, new, now + ttl_us, self.name),
            )
            return new

    async def _extend(self, token: int) -> bool:
        return await self._guarded_update(
            "expires_at_us = NOW_US + ?", (self.ttl_ms * 1000,), token
        )

    async def _write(self, token: int, value: str) -> bool:
        return await self._guarded_update("value = ?", (value,), token)

    async def _guarded_update(self, assignment: str, values: Sequence[object], token: int) -> bool:
        """Run ``UPDATE ... SET assignment`` if ``token`` is this holder's unexpired term."""
        sql = self._q(
            f"UPDATE pirn_like_leases SET {assignment} WHERE name = ? AND holder = ? "
            "AND token = ? AND expires_at_us > NOW_US RETURNING token"
        )
        async with self._open().transaction() as tx:
            return bool(await tx.fetch(sql, (*values, self.name, self.holder, token)))

    async def _end(self, token: int) -> None:
        sql = self._q(
            "UPDATE pirn_like_leases SET holder = '', expires_at_us = 0 "
            "WHERE name = ? AND holder = ? AND token = ?"
        )
        async with self._open().transaction() as tx:
            await tx.execute(sql, (self.name, self.holder, token))

    async def _current_holder(self) -> str | None:
        sql = self._q(
            "SELECT holder FROM pirn_like_leases WHERE name = ? AND holder <> '' "
            "AND expires_at_us > NOW_US"
        )
        rows = await self._open().fetch(sql, (self.name,))
        return str(rows[0][0]) if rows else None

    async def _read(self) -> str | None:
        sql = self._q("SELECT value FROM pirn_like_leases WHERE name = ?")
        rows = await self._open().fetch(sql, (self.name,))
        return None if not rows or rows[0][0] is None else str(rows[0][0])


def _row(rows: Sequence[Sequence[Any]]) -> tuple[str, int, int, int]:
    holder, token, expires, now = rows[0]
    return str(holder), int(token), int(expires), int(now)
