"""Runs and lineage in a DuckDB file."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Self, TypeVar

import anyio

from pirn_like._errors import MissingExtraError
from pirn_like.backends._sql import DUCKDB, SerialSession, SQLHistory, database_path

if TYPE_CHECKING:
    import duckdb

__all__ = ["DuckDBHistory"]

_T = TypeVar("_T")


class DuckDBHistory(SQLHistory):
    """A RunHistory in a DuckDB file (``pip install 'pirn-like[duckdb]'``).

    DuckDB lets one process open a file at a time: a second process opening the same
    file fails with ``BackendError``; use ``SQLiteHistory`` or ``PostgresHistory`` to
    share a history between processes. ``":memory:"`` keeps everything in this
    process until it is closed. DuckDB's calls block, so they run on a worker thread,
    one at a time; this works under asyncio and trio.
    """

    extra = "duckdb"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        super().__init__(dialect=DUCKDB, url=f"duckdb:///{self.path}", connect=self._open)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Self:
        """``duckdb:///relative/path.duckdb``, ``duckdb:////absolute/path.duckdb`` or
        ``duckdb:///:memory:``; ``options`` go to the constructor."""
        return cls(database_path(url, "duckdb", cls.__name__, example="runs.duckdb"), **options)

    async def _open(self) -> SerialSession:
        try:
            import duckdb
        except ImportError as exc:
            raise MissingExtraError(type(self).__name__, "duckdb", "duckdb") from exc
        limiter = anyio.CapacityLimiter(1)
        conn = await anyio.to_thread.run_sync(duckdb.connect, self.path, limiter=limiter)
        return SerialSession(
            _Connection(conn, limiter), begin="BEGIN TRANSACTION", errors=(duckdb.Error,)
        )


class _Connection:
    """A DuckDB connection driven from worker threads, one call at a time."""

    def __init__(self, conn: duckdb.DuckDBPyConnection, limiter: anyio.CapacityLimiter) -> None:
        self._conn = conn
        self._limiter = limiter

    async def _call(self, work: Callable[[], _T]) -> _T:
        return await anyio.to_thread.run_sync(work, limiter=self._limiter)

    async def fetch(self, sql: str, params: Sequence[object] = ()) -> Sequence[Sequence[Any]]:
        return await self._call(lambda: self._conn.execute(sql, params).fetchall())

    async def execute(self, sql: str, params: Sequence[object] = ()) -> None:
        await self._call(lambda: self._conn.execute(sql, params))

    async def insert_rows(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        columns = [list(column) for column in zip(*rows, strict=True)]
        await self._call(lambda: self._conn.execute(sql, columns))

    async def close(self) -> None:
        await self._call(self._conn.close)
