"""``SQLiteVectorIndex``: the embedded default, exact cosine search over a SQLite file.

The file is used through the standard library's ``sqlite3`` in worker threads (not
aiosqlite, which needs asyncio), so the index works under asyncio and trio.

Vectors are stored as float32 blobs; a query reads the candidate rows and ranks them
with one numpy matrix product, so results are exact (no approximate index) and the
cost grows with the number of chunks: the right trade for up to some 100k chunks.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from pirn_like._errors import MissingExtraError
from pirn_like.backends._closing import closing_on_error
from pirn_like.backends._sql import SerialSession, Session, database_path
from pirn_like.backends._sqlite import use_wal
from pirn_like.capabilities.rag._models import EmbedderIdentity, ScoredChunk
from pirn_like.capabilities.rag._sql_index import SqlVectorIndex, matches, scored

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["SQLiteVectorIndex"]

_BUSY_TIMEOUT = 10.0


class SQLiteVectorIndex(SqlVectorIndex):
    """A vector index in a SQLite file: ``SQLiteVectorIndex("sqlite:///rag.db")`` or a
    path. Nothing is opened until first use."""

    _owner = "SQLiteVectorIndex"

    def __init__(self, url: str | Path, *, table: str = "rag_chunks") -> None:
        if isinstance(url, Path) or "://" not in url:
            self._path = str(url)
        else:
            self._path = database_path(url, "sqlite", self._owner, example="rag.db")
        super().__init__(table=table)

    @property
    def identity(self) -> str:
        return f"sqlite:///{self._path}#{self.table}"

    async def _connect(self) -> Session:
        # Autocommit mode: SerialSession begins each transaction itself (BEGIN IMMEDIATE).
        raw = await anyio.to_thread.run_sync(
            functools.partial(
                sqlite3.connect,
                self._path,
                isolation_level=None,
                timeout=_BUSY_TIMEOUT,
                check_same_thread=False,
            )
        )
        session = SerialSession(
            _ThreadedConnection(raw), begin="BEGIN IMMEDIATE", errors=(sqlite3.Error,)
        )
        async with closing_on_error(session.aclose):
            await use_wal(session, busy_timeout=_BUSY_TIMEOUT)
        return session

    async def _create_tables(self, session: Session, embedder: EmbedderIdentity) -> None:
        async with session.transaction() as tx:
            await tx.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table} (doc_id TEXT NOT NULL, "
                "chunk_index INTEGER NOT NULL, hash TEXT NOT NULL, text TEXT NOT NULL, "
                "start INTEGER NOT NULL, metadata TEXT NOT NULL, vector BLOB NOT NULL, "
                "PRIMARY KEY (doc_id, chunk_index))"
            )

    def _encode(self, vector: Sequence[float]) -> object:
        try:
            import numpy as np
        except ImportError as exc:
            raise MissingExtraError(self._owner, "rag", "numpy") from exc
        return _unit(np.asarray(vector, dtype="<f4")).tobytes()

    @property
    def _insert(self) -> str:
        return (
            f"INSERT INTO {self.table} (doc_id, chunk_index, hash, text, start, metadata, "
            "vector) VALUES (?, ?, ?, ?, ?, ?, ?)"
        )

    async def _nearest(
        self, session: Session, vector: Sequence[float], k: int, where: Mapping[str, str]
    ) -> list[ScoredChunk]:
        try:
            import numpy as np
        except ImportError as exc:
            raise MissingExtraError(self._owner, "rag", "numpy") from exc
        doc_id = where.get("doc_id")
        sql = (
            f"SELECT doc_id, chunk_index, hash, text, start, metadata, vector FROM {self.table}"
            + (" WHERE doc_id = ?" if doc_id is not None else "")
            + " ORDER BY doc_id, chunk_index"
        )
        rows = await session.fetch(sql, (doc_id,) if doc_id is not None else ())
        rows = [r for r in rows if matches(json.loads(r[5]), r[0], where)]
        if not rows:
            return []

        def rank() -> list[tuple[int, float]]:
            matrix = np.frombuffer(b"".join(r[6] for r in rows), dtype="<f4").reshape(len(rows), -1)
            query = np.asarray(vector, dtype=np.float32)
            norm = float(np.linalg.norm(query)) or 1.0
            scores = matrix @ (query / norm)  # stored vectors have unit length (_unit)
            # Stable sort on the negated scores: ties keep (doc_id, chunk_index) order.
            best = np.argsort(-scores, kind="stable")[:k]
            return [(int(i), float(scores[i])) for i in best]

        ranked = await anyio.to_thread.run_sync(rank)
        return [scored(rows[i], score) for i, score in ranked]


class _ThreadedConnection:
    """A ``sqlite3`` connection as a ``SerialConnection``: each call in a worker thread
    (``SerialSession`` lets one call at a time through)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def fetch(self, sql: str, params: Sequence[object] = ()) -> Sequence[Sequence[Any]]:
        return await anyio.to_thread.run_sync(lambda: self._conn.execute(sql, params).fetchall())

    async def execute(self, sql: str, params: Sequence[object] = ()) -> None:
        await anyio.to_thread.run_sync(lambda: self._conn.execute(sql, params).close())

    async def insert_rows(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        await anyio.to_thread.run_sync(lambda: self._conn.executemany(sql, rows).close())

    async def close(self) -> None:
        await anyio.to_thread.run_sync(self._conn.close)


def _unit(vector: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """``vector`` scaled to unit length, so a dot product is the cosine."""
    import numpy as np

    norm = float(np.linalg.norm(vector))
    return (vector / norm).astype("<f4") if norm > 0 else vector
