"""What the SQL vector indexes share: the lazy, lock-guarded open, the embedder check
kept in a metadata table, and rows back into ``ScoredChunk``s."""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Self

import anyio

from pirn_like.backends._sql import Session
from pirn_like.capabilities.rag._errors import VectorIndexError
from pirn_like.capabilities.rag._models import (
    EmbeddedChunk,
    EmbedderIdentity,
    ScoredChunk,
    TextChunk,
)

__all__ = ["SqlVectorIndex", "check_table", "chunk_rows", "scored"]

_TABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,50}\Z")
_SCORE_DIGITS = 6
"""Scores are rounded so that the last bits of a dot product, which can vary with the
BLAS build, do not change a retrieval's content hash."""


def check_table(owner: str, table: str) -> str:
    """``table`` if it is a plain SQL identifier, else ValueError naming it."""
    if not _TABLE.match(table):
        raise ValueError(
            f"{owner}: table {table!r} must be letters, digits and '_' (not first), "
            "at most 51 characters"
        )
    return table


def scored(row: Sequence[Any], score: float) -> ScoredChunk:
    """A ``(doc_id, chunk_index, hash, text, start, metadata JSON)`` row and its score."""
    doc_id, index, hash_, text, start, metadata = row[:6]
    chunk = TextChunk(
        doc_id=doc_id,
        index=index,
        hash=hash_,
        text=text,
        start=start,
        metadata=json.loads(metadata) if isinstance(metadata, str) else dict(metadata),
    )
    return ScoredChunk(chunk=chunk, score=round(float(score), _SCORE_DIGITS))


def chunk_rows(
    items: Sequence[EmbeddedChunk], encode: Callable[[Sequence[float]], object]
) -> list[tuple[object, ...]]:
    """``(doc_id, chunk_index, hash, text, start, metadata JSON, encoded vector)`` rows."""
    return [
        (
            c.doc_id,
            c.index,
            c.hash,
            c.text,
            c.start,
            json.dumps(c.metadata, sort_keys=True),
            encode(item.vector),
        )
        for item in items
        for c in (item.chunk,)
    ]


def matches(metadata: Mapping[str, str], doc_id: str, where: Mapping[str, str]) -> bool:
    """Whether a chunk passes a ``where`` filter (``doc_id`` names the document)."""
    return all(
        (doc_id if key == "doc_id" else metadata.get(key)) == value for key, value in where.items()
    )


class SqlVectorIndex(ABC):
    """A vector index in one SQL table (``table``) and its metadata table
    (``table_meta``, one row: the embedder whose vectors the table holds)."""

    _owner: str

    def __init__(self, *, table: str) -> None:
        self.table = check_table(self._owner, table)
        self._session: Session | None = None
        self._lock = anyio.Lock()
        self._closed = False
        self._embedder: EmbedderIdentity | None = None

    @property
    @abstractmethod
    def identity(self) -> str:
        """Kind, redacted location and table."""

    @abstractmethod
    async def _connect(self) -> Session: ...

    @abstractmethod
    async def _create_tables(self, session: Session, embedder: EmbedderIdentity) -> None:
        """Create the chunk table for vectors of ``embedder`` (idempotent)."""

    @abstractmethod
    def _encode(self, vector: Sequence[float]) -> object:
        """``vector`` as the insert statement binds it."""

    @property
    @abstractmethod
    def _insert(self) -> str:
        """``INSERT`` of one ``chunk_rows`` row."""

    async def _replace(self, session: Session, items: Sequence[EmbeddedChunk]) -> None:
        """Delete the rows of the items' documents and insert the items, in one
        transaction."""
        rows = chunk_rows(items, self._encode)
        async with session.transaction() as tx:
            for doc_id in sorted({item.chunk.doc_id for item in items}):
                await tx.execute(
                    f"DELETE FROM {self.table} WHERE doc_id = {self._placeholder(1)}", (doc_id,)
                )
            await tx.insert_rows(self._insert, rows)

    @abstractmethod
    async def _nearest(
        self, session: Session, vector: Sequence[float], k: int, where: Mapping[str, str]
    ) -> list[ScoredChunk]: ...

    @property
    def _meta(self) -> str:
        return f"{self.table}_meta"

    async def _open(self) -> Session:
        if self._closed:
            raise VectorIndexError(f"{self.identity} is closed")
        if self._session is None:
            async with self._lock:
                if self._session is None:
                    session = await self._connect()
                    try:
                        async with session.transaction() as tx:
                            await tx.execute(
                                f"CREATE TABLE IF NOT EXISTS {self._meta} "
                                "(id INTEGER PRIMARY KEY, embedder TEXT NOT NULL)"
                            )
                        rows = await session.fetch(f"SELECT embedder FROM {self._meta}")
                    except BaseException:
                        with anyio.CancelScope(shield=True):
                            await session.aclose()
                        raise
                    if rows:
                        self._embedder = EmbedderIdentity.model_validate_json(rows[0][0])
                    self._session = session
        return self._session

    def _check(self, embedder: EmbedderIdentity) -> None:
        if self._embedder is not None and self._embedder != embedder:
            raise VectorIndexError(
                f"{self.identity} holds vectors of {self._embedder}, not {embedder}: "
                "use one embedder per index (or another table)"
            )

    async def upsert(self, embedder: EmbedderIdentity, items: Sequence[EmbeddedChunk]) -> None:
        """Replace the documents of ``items`` with ``items``."""
        session = await self._open()
        self._check(embedder)
        for item in items:
            if len(item.vector) != embedder.dimension:
                raise VectorIndexError(
                    f"chunk {item.chunk.doc_id}#{item.chunk.index} has a vector of "
                    f"{len(item.vector)} dimensions, {embedder} makes {embedder.dimension}"
                )
        if self._embedder is None:
            async with self._lock:
                await self._create_tables(session, embedder)
                async with session.transaction() as tx:
                    await tx.execute(
                        f"INSERT INTO {self._meta} (id, embedder) "
                        f"VALUES (1, {self._placeholder(1)}) ON CONFLICT (id) DO NOTHING",
                        (embedder.model_dump_json(),),
                    )
                rows = await session.fetch(f"SELECT embedder FROM {self._meta}")
                self._embedder = EmbedderIdentity.model_validate_json(rows[0][0])
            self._check(embedder)
        if items:
            await self._replace(session, items)

    async def query(
        self,
        embedder: EmbedderIdentity,
        vector: Sequence[float],
        k: int,
        *,
        where: Mapping[str, str] | None = None,
    ) -> list[ScoredChunk]:
        """The ``k`` chunks nearest to ``vector`` (see ``VectorIndex``)."""
        if k < 1:
            raise ValueError(f"{self.identity}: k must be at least 1, got {k}")
        session = await self._open()
        if self._embedder is None:
            return []  # nothing written yet
        self._check(embedder)
        if len(vector) != embedder.dimension:
            raise VectorIndexError(
                f"query vector has {len(vector)} dimensions, {embedder} makes {embedder.dimension}"
            )
        return await self._nearest(session, vector, k, dict(where or {}))

    @staticmethod
    def _placeholder(n: int) -> str:
        return "?"

    async def aclose(self) -> None:
        """Close the connection; the index cannot be used afterwards."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            await session.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.identity}>"
