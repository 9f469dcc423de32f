"""Runs and lineage in a SQLite file (aiosqlite)."""

from __future__ import annotations

import os
from typing import Any, Self

from pirn_like.backends._sql import SQLITE, SerialSession, SQLHistory, database_path
from pirn_like.backends._sqlite import open_sqlite

__all__ = ["SQLiteHistory"]


class SQLiteHistory(SQLHistory):
    """A RunHistory in a SQLite file (``pip install 'pirn-like[sqlite]'``); needs asyncio.

    Several processes may record into the same file at once: the database runs in
    WAL mode, each write takes the write lock up front (``BEGIN IMMEDIATE``) and
    waits up to ``busy_timeout`` seconds for another writer to finish. ``":memory:"``
    keeps everything in this process until it is closed.
    """

    extra = "sqlite"

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 30.0) -> None:
        if busy_timeout < 0:
            raise ValueError(f"busy_timeout must be at least 0 seconds, got {busy_timeout}")
        self.path = os.fspath(path)
        self.busy_timeout = busy_timeout
        super().__init__(dialect=SQLITE, url=f"sqlite:///{self.path}", connect=self._open)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Self:
        """``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` or
        ``sqlite:///:memory:``; ``options`` go to the constructor."""
        return cls(database_path(url, "sqlite", cls.__name__, example="runs.db"), **options)

    async def _open(self) -> SerialSession:
        return await open_sqlite(
            self.path, busy_timeout=self.busy_timeout, owner=type(self).__name__
        )
