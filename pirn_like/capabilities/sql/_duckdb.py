"""Loads into a DuckDB file; DuckDB's blocking calls run on a worker thread, one at a
time (asyncio and trio)."""

from __future__ import annotations

import os
from typing import ClassVar

import anyio

from pirn_like._errors import MissingExtraError
from pirn_like.backends._duckdb_history import (
    _Connection as DuckDBConnection,  # pyright: ignore[reportPrivateUsage]
)
from pirn_like.backends._sql import SerialSession, Session
from pirn_like.capabilities.sql._dialect import DUCKDB_LOADS, SqlDialect
from pirn_like.capabilities.sql._session import SessionTarget

__all__ = ["DuckDBTarget"]


class DuckDBTarget(SessionTarget):
    """A DuckDB database file (or ``":memory:"``) as a ``SqlTarget``
    (``pip install 'pirn-like[duckdb]'``). One process can open a file at a time."""

    _dialect: ClassVar[SqlDialect] = DUCKDB_LOADS

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        super().__init__(f"duckdb:///{self.path}")

    async def _open(self) -> Session:
        try:
            import duckdb
        except ImportError as exc:
            raise MissingExtraError("DuckDBTarget", "duckdb", "duckdb") from exc
        limiter = anyio.CapacityLimiter(1)
        conn = await anyio.to_thread.run_sync(duckdb.connect, self.path, limiter=limiter)
        return SerialSession(
            DuckDBConnection(conn, limiter), begin="BEGIN TRANSACTION", errors=(duckdb.Error,)
        )
