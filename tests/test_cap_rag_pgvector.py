"""``PgVectorIndex`` on a real PostgreSQL with the pgvector extension (pgserver ships it)."""

from __future__ import annotations

from pathlib import Path

import pytest
from _rag_helpers import (
    QUESTIONS,
    CorpusVectors,
    MemoEmbedder,
    check_vector_index,
    corpus_vectors,
    rag_tapestry,
)

from pirn_like import RunRequest
from pirn_like.capabilities.rag import (
    Answer,
    PgVectorIndex,
    SQLiteVectorIndex,
)

# asyncpg runs on asyncio only.
pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["asyncio"])]


@pytest.fixture(scope="session")
def corpus() -> CorpusVectors:
    return corpus_vectors()


async def test_pgvector_keeps_the_vector_index_promises(postgres_db_url: str) -> None:
    await check_vector_index(lambda: PgVectorIndex(postgres_db_url, table="toy"))


async def test_pgvector_identity_hides_the_password() -> None:
    index = PgVectorIndex("postgresql://me:s3cret@db.example/rag", table="docs")
    assert index.identity == "postgresql://me:***@db.example/rag#docs"
    with pytest.raises(ValueError, match="postgresql://"):
        PgVectorIndex("sqlite:///x.db")


async def test_pgvector_ranks_the_corpus_like_the_embedded_index(
    corpus: CorpusVectors, postgres_db_url: str, tmp_path: Path
) -> None:
    vectors = await corpus.embedder.embed(list(QUESTIONS))
    async with (
        PgVectorIndex(postgres_db_url) as pg,
        SQLiteVectorIndex(tmp_path / "rag.db") as lite,
    ):
        await pg.upsert(corpus.identity, corpus.items)
        await lite.upsert(corpus.identity, corpus.items)
        for (question, expected), vector in zip(QUESTIONS.items(), vectors, strict=True):
            from_pg = await pg.query(corpus.identity, vector, 3)
            from_lite = await lite.query(corpus.identity, vector, 3)
            assert from_pg[0].chunk.doc_id == expected, question
            assert [h.chunk.hash for h in from_pg] == [h.chunk.hash for h in from_lite]
            for a, b in zip(from_pg, from_lite, strict=True):
                assert a.score == pytest.approx(b.score, abs=1e-4)


async def test_a_tapestry_answers_from_postgres(
    corpus: CorpusVectors, postgres_db_url: str
) -> None:
    embedder = MemoEmbedder(corpus)
    async with PgVectorIndex(postgres_db_url) as index:
        t = rag_tapestry(embedder, index)
        result = await t.run(
            RunRequest(
                parameters={"documents": corpus.documents, "question": "What causes spring tides?"}
            )
        )
        assert result.succeeded, result.exceptions
        answer: Answer = result.outputs["answer"]
        assert answer.sources[0] == "tides"
        assert result.outputs["upsert"].index == index.identity
