"""The values RAG knots pass along: frozen pydantic models, hashed into lineage."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from pirn_like.core._hashing import content_hash

__all__ = [
    "Answer",
    "Document",
    "EmbeddedChunk",
    "EmbedderIdentity",
    "Embeddings",
    "IndexWrite",
    "Retrieval",
    "ScoredChunk",
    "TextChunk",
    "chunk_hash",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class Document(BaseModel):
    """A text to index: its id, the text and string metadata (filterable at retrieval)."""

    model_config = _FROZEN
    id: str = Field(min_length=1)
    text: str
    metadata: dict[str, str] = Field(default_factory=dict[str, str])


def chunk_hash(doc_id: str, index: int, text: str, metadata: dict[str, str]) -> str:
    """The content hash naming one chunk: its document, position, text and metadata."""
    return content_hash(("chunk", doc_id, index, text, metadata))


class TextChunk(BaseModel):
    """One window of a document's text. ``hash`` names it in answers and lineage."""

    model_config = _FROZEN
    doc_id: str
    index: int = Field(ge=0)
    text: str
    start: int = Field(ge=0)
    """Offset of the chunk's first character in the document's text."""
    metadata: dict[str, str] = Field(default_factory=dict[str, str])
    hash: str


class EmbedderIdentity(BaseModel):
    """What produced a vector: the model's name, version and dimension. Vectors of
    different identities are not comparable, so an index keeps to one."""

    model_config = _FROZEN
    name: str
    version: str
    dimension: int = Field(gt=0)

    def __str__(self) -> str:
        return f"{self.name}@{self.version} ({self.dimension}d)"


class EmbeddedChunk(BaseModel):
    """A chunk and its unit-length vector."""

    model_config = _FROZEN
    chunk: TextChunk
    vector: tuple[float, ...]


class Embeddings(BaseModel):
    """The output of ``Embed``: chunks with vectors, and the embedder that made them."""

    model_config = _FROZEN
    embedder: EmbedderIdentity
    items: tuple[EmbeddedChunk, ...]


class IndexWrite(BaseModel):
    """The effect of ``IndexUpsert``: which index, which documents were (re)written
    and the hashes of the chunks they now hold."""

    model_config = _FROZEN
    index: str
    embedder: EmbedderIdentity
    documents: tuple[str, ...]
    chunk_hashes: tuple[str, ...]


class ScoredChunk(BaseModel):
    """A chunk found by a query, with its cosine similarity to the query."""

    model_config = _FROZEN
    chunk: TextChunk
    score: float


class Retrieval(BaseModel):
    """The output of ``Retrieve``: the question and the best chunks, best first."""

    model_config = _FROZEN
    question: str
    index: str
    hits: tuple[ScoredChunk, ...]


class Answer(BaseModel):
    """The output of ``Generate``: the answer text, the model that wrote it and the
    hashes of the chunks it was grounded on (in the order given to the model)."""

    model_config = _FROZEN
    question: str
    text: str
    model: str
    grounded_on: tuple[str, ...]
    sources: tuple[str, ...]
    """Document ids of the grounding chunks, first appearance order."""
