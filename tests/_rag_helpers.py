"""The shipped RAG corpus, its questions, and its vectors computed once per session."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import pytest

from pirn_like import KnotConfig, Parameter, Tapestry
from pirn_like.capabilities.rag import (
    Chunk,
    Document,
    Embed,
    EmbeddedChunk,
    EmbedderIdentity,
    ExtractiveLLM,
    Generate,
    IndexUpsert,
    LocalEmbedder,
    Retrieve,
    VectorIndex,
    VectorIndexError,
)
from pirn_like.capabilities.rag._chunking import chunk_document

CORPUS = Path(__file__).parent / "rag_corpus"

QUESTIONS = {
    "How do plants make oxygen from sunlight?": "photosynthesis",
    "What is molten rock called before it erupts?": "volcanoes",
    "Why does naturally leavened bread taste sour?": "sourdough",
    "How do bees tell each other where flowers are?": "bees",
    "What causes spring tides?": "tides",
    "How does the body remember a germ after a shot?": "vaccines",
    "Which language prevents memory bugs with a borrow checker?": "rust_language",
    "How is an espresso shot made?": "coffee",
    "Can light escape from a collapsed star?": "black_holes",
    "What does a consumer group do with offsets?": "kafka_streams",
}
"""Questions worded unlike their document, and the document that answers each."""


def corpus_documents() -> list[Document]:
    return [Document(id=p.stem, text=p.read_text()) for p in sorted(CORPUS.glob("*.txt"))]


@dataclass
class CorpusVectors:
    """The corpus chunked as the tests chunk it, with the bundled model's vectors."""

    embedder: LocalEmbedder
    documents: list[Document]
    items: list[EmbeddedChunk]
    cache: dict[str, tuple[float, ...]] = field(default_factory=dict[str, tuple[float, ...]])

    @property
    def identity(self) -> EmbedderIdentity:
        return self.embedder.identity

    @classmethod
    async def build(cls) -> CorpusVectors:
        embedder = LocalEmbedder()
        documents = corpus_documents()
        chunks = [c for d in documents for c in chunk_document(d, max_chars=400, overlap=80)]
        vectors = await embedder.embed([c.text for c in chunks])
        items = [EmbeddedChunk(chunk=c, vector=v) for c, v in zip(chunks, vectors, strict=True)]
        return cls(
            embedder, documents, items, {c.text: v for c, v in zip(chunks, vectors, strict=True)}
        )


class MemoEmbedder:
    """The bundled model, answering texts the session has embedded already from memory
    (the same vectors, without computing them again)."""

    def __init__(self, corpus: CorpusVectors) -> None:
        self.corpus = corpus

    @property
    def identity(self) -> EmbedderIdentity:
        return self.corpus.identity

    async def embed(self, texts: Sequence[str]) -> list[tuple[float, ...]]:
        missing = [t for t in dict.fromkeys(texts) if t not in self.corpus.cache]
        if missing:
            vectors = await self.corpus.embedder.embed(missing)
            self.corpus.cache.update(zip(missing, vectors, strict=True))
        return [self.corpus.cache[t] for t in texts]


@functools.cache
def corpus_vectors() -> CorpusVectors:
    """The corpus and its vectors, embedded once per test process (the model load too)."""
    return anyio.run(CorpusVectors.build)


def rag_tapestry(embedder: MemoEmbedder, index: VectorIndex) -> Tapestry:
    """documents, question → chunk → embed → upsert → retrieve (k=3) → answer."""
    with Tapestry() as t:
        docs = Parameter("documents", list[Document])
        question = Parameter("question", str)
        chunks = Chunk(documents=docs, max_chars=400, overlap=80, _config=KnotConfig(id="chunk"))
        vectors = Embed(chunks=chunks, embedder=embedder, _config=KnotConfig(id="embed"))
        written = IndexUpsert(embeddings=vectors, index=index, _config=KnotConfig(id="upsert"))
        found = Retrieve(
            question=question,
            after=written,
            embedder=embedder,
            index=index,
            k=3,
            _config=KnotConfig(id="retrieve"),
        )
        Generate(retrieval=found, llm=ExtractiveLLM(), _config=KnotConfig(id="answer"))
    return t


TOY = EmbedderIdentity(name="toy", version="1", dimension=3)
"""A made-up embedder identity for index tests with hand-written 3-d vectors."""


def toy_item(doc: str, index: int, vector: Sequence[float], **metadata: str) -> EmbeddedChunk:
    """Chunk ``index`` of document ``doc`` with ``vector``."""
    chunk = chunk_document(
        Document(id=doc, text=f"{doc} chunk {index}", metadata=metadata), max_chars=99, overlap=0
    )[0]
    return EmbeddedChunk(chunk=chunk.model_copy(update={"index": index}), vector=tuple(vector))


async def check_vector_index(open_index: Callable[[], VectorIndex]) -> None:
    """What every ``VectorIndex`` promises, on a fresh table that ``open_index`` opens
    (called twice: the second index must see what the first wrote)."""
    async with open_index() as index:
        assert await index.query(TOY, [1, 0, 0], 5) == []  # nothing written yet
        await index.upsert(
            TOY,
            [
                toy_item("a", 0, [1, 0, 0], lang="en"),
                toy_item("a", 1, [0, 1, 0], lang="en"),
                toy_item("b", 0, [0.9, 0.1, 0], lang="fr"),
            ],
        )
        hits = await index.query(TOY, [2, 0, 0], 2)  # any length: cosine
        assert [(h.chunk.doc_id, h.chunk.index) for h in hits] == [("a", 0), ("b", 0)]
        assert hits[0].score == pytest.approx(1.0)
        assert hits[0].chunk == toy_item("a", 0, [], lang="en").chunk
        french = await index.query(TOY, [1, 0, 0], 5, where={"lang": "fr"})
        assert [h.chunk.doc_id for h in french] == ["b"]
        only_a = await index.query(TOY, [1, 0, 0], 5, where={"doc_id": "a"})
        assert {h.chunk.doc_id for h in only_a} == {"a"}
        # Document a now has one chunk: its old chunk 1 is gone.
        await index.upsert(TOY, [toy_item("a", 0, [0, 0, 1])])
        rest = await index.query(TOY, [0, 1, 0], 5)
        assert sorted((h.chunk.doc_id, h.chunk.index) for h in rest) == [("a", 0), ("b", 0)]
    # The vectors and the embedder survive closing and reopening.
    async with open_index() as reopened:
        again = await reopened.query(TOY, [0, 0, 1], 1)
        assert again[0].chunk.doc_id == "a"
        assert again[0].score == pytest.approx(1.0)
        other = EmbedderIdentity(name="other", version="1", dimension=3)
        with pytest.raises(VectorIndexError, match="holds vectors of toy@1"):
            await reopened.upsert(other, [toy_item("c", 0, [1, 0, 0])])
        with pytest.raises(VectorIndexError, match="2 dimensions"):
            await reopened.upsert(TOY, [toy_item("c", 0, [1, 0])])
        with pytest.raises(VectorIndexError, match="2 dimensions"):
            await reopened.query(TOY, [1, 0], 1)
    with pytest.raises(VectorIndexError, match="closed"):
        await reopened.query(TOY, [1, 0, 0], 1)
