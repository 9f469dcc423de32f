"""Loads into a SQLite file, through aiosqlite (asyncio and trio)."""

from __future__ import annotations

import os
from typing import ClassVar

from pirn_like.backends._sql import Session
from pirn_like.backends._sqlite import open_sqlite
from pirn_like.capabilities.sql._dialect import SQLITE_LOADS, SqlDialect
from pirn_like.capabilities.sql._session import SessionTarget

__all__ = ["SQLiteTarget"]


class SQLiteTarget(SessionTarget):
    """A SQLite database file as a ``SqlTarget`` (``pip install 'pirn-like[sqlite]'``).

    Each load is one ``BEGIN IMMEDIATE`` transaction; a concurrent writer waits up to
    ``busy_timeout`` seconds for the lock.
    """

    _dialect: ClassVar[SqlDialect] = SQLITE_LOADS

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 30.0) -> None:
        self.path = os.fspath(path)
        self.busy_timeout = busy_timeout
        super().__init__(f"sqlite:///{self.path}")

    async def _open(self) -> Session:
        return await open_sqlite(self.path, busy_timeout=self.busy_timeout, owner="SQLiteTarget")
