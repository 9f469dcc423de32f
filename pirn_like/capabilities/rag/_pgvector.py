"""``PgVectorIndex``: chunks and vectors in PostgreSQL with the pgvector extension.

Cosine distance (``<=>``) ranks the rows in the database. Without an index that is an
exact scan; an HNSW or IVFFlat index made on the ``embedding`` column by the operator
makes it approximate and fast. asyncio only (asyncpg).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from pirn_like.backends._postgres import open_pool_session
from pirn_like.backends._sql import Session, parse_url
from pirn_like.backends._url import redact
from pirn_like.capabilities.rag._errors import VectorIndexError
from pirn_like.capabilities.rag._models import EmbedderIdentity, ScoredChunk
from pirn_like.capabilities.rag._sql_index import SqlVectorIndex, scored

__all__ = ["PgVectorIndex"]


def _vector_literal(vector: Sequence[float]) -> str:
    # Sent as text and cast by the server, so asyncpg needs no codec for the type.
    return "[" + ",".join(repr(float(x)) for x in vector) + "]"


class PgVectorIndex(SqlVectorIndex):
    """A vector index in PostgreSQL: ``PgVectorIndex("postgresql://user@host/db")``.

    On first use it runs ``CREATE EXTENSION IF NOT EXISTS vector`` (which needs a role
    allowed to, or the extension already created) and creates the tables.
    """

    _owner = "PgVectorIndex"

    def __init__(self, url: str, *, table: str = "rag_chunks", max_connections: int = 4) -> None:
        parse_url(url, ("postgresql", "postgres"), self._owner)
        self._url = url
        self._max_connections = max_connections
        super().__init__(table=table)

    @property
    def identity(self) -> str:
        return f"{redact(self._url)}#{self.table}"

    @staticmethod
    def _placeholder(n: int) -> str:
        return f"${n}"

    async def _connect(self) -> Session:
        session = await open_pool_session(
            self._url, owner=self._owner, min_size=1, max_size=self._max_connections
        )
        try:
            async with session.transaction() as tx:
                await tx.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except session.errors as exc:
            await session.aclose()
            raise VectorIndexError(
                f"{self.identity}: cannot enable the pgvector extension ({exc}); "
                "install pgvector on the server or have an administrator run "
                "CREATE EXTENSION vector"
            ) from exc
        return session

    async def _create_tables(self, session: Session, embedder: EmbedderIdentity) -> None:
        async with session.transaction() as tx:
            await tx.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table} (doc_id TEXT NOT NULL, "
                "chunk_index INTEGER NOT NULL, hash TEXT NOT NULL, text TEXT NOT NULL, "
                "start INTEGER NOT NULL, metadata JSONB NOT NULL, "
                f"embedding vector({embedder.dimension}) NOT NULL, "
                "PRIMARY KEY (doc_id, chunk_index))"
            )

    def _encode(self, vector: Sequence[float]) -> object:
        return _vector_literal(vector)

    @property
    def _insert(self) -> str:
        return (
            f"INSERT INTO {self.table} (doc_id, chunk_index, hash, text, start, metadata, "
            "embedding) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::text::vector)"
        )

    async def _nearest(
        self, session: Session, vector: Sequence[float], k: int, where: Mapping[str, str]
    ) -> list[ScoredChunk]:
        metadata = {key: value for key, value in where.items() if key != "doc_id"}
        doc_id = where.get("doc_id")
        rows = await session.fetch(
            f"SELECT doc_id, chunk_index, hash, text, start, metadata::text, "
            "1 - (embedding <=> $1::text::vector) AS score "
            f"FROM {self.table} WHERE metadata @> $2::jsonb "
            "AND ($3::text IS NULL OR doc_id = $3::text) "
            "ORDER BY embedding <=> $1::text::vector, doc_id, chunk_index LIMIT $4",
            (_vector_literal(vector), json.dumps(metadata), doc_id, k),
        )
        return [scored(row, row[6]) for row in rows]
