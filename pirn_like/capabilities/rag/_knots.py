"""The RAG knots: ``Chunk`` → ``Embed`` → ``IndexUpsert``; ``Retrieve`` → ``Generate``.

Engines (embedder, index, model) are constructor keywords kept on the knot; their
identities enter the knot's config hash, so lineage says which model and which index
an output came from. Data arrives as ordinary knot inputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pirn_like._errors import WiringError
from pirn_like.capabilities.rag._chunking import chunk_document
from pirn_like.capabilities.rag._models import (
    Answer,
    Document,
    EmbeddedChunk,
    Embeddings,
    IndexWrite,
    Retrieval,
    TextChunk,
)
from pirn_like.capabilities.rag._protocol import LLM, Embedder, VectorIndex
from pirn_like.core._config import KnotConfig
from pirn_like.core._knot import Knot, Registrar

__all__ = ["Chunk", "Embed", "Generate", "IndexUpsert", "Retrieve"]


def _documents(value: object) -> list[Document]:
    """Documents from a ``Document``, a list of them (or of dicts), or a bare text."""
    if isinstance(value, str):
        return [Document(id="text", text=value)]
    if isinstance(value, Document | Mapping):
        value = [value]
    if not isinstance(value, Sequence):
        raise TypeError(
            f"Chunk takes a Document, a list of Documents or a text, got {type(value).__name__}"
        )
    documents = [Document.model_validate(d) for d in value]
    seen: set[str] = set()
    for d in documents:
        if d.id in seen:
            raise ValueError(f"Chunk: document id {d.id!r} appears twice; ids must be unique")
        seen.add(d.id)
    return documents


class Chunk(Knot):
    """Documents → ``list[TextChunk]``: windows of at most ``max_chars`` characters,
    cut at sentence ends where possible, each starting with up to ``overlap``
    characters of whole sentences from the window before."""

    def __init__(
        self,
        *,
        max_chars: int = 800,
        overlap: int = 120,
        _config: KnotConfig | None = None,
        tapestry: Registrar | None = None,
        **inputs: object,
    ) -> None:
        if max_chars < 1 or not 0 <= overlap < max_chars:
            raise WiringError(
                f"Chunk: need max_chars >= 1 and 0 <= overlap < max_chars, got "
                f"max_chars={max_chars}, overlap={overlap}"
            )
        self.max_chars = max_chars
        self.overlap = overlap
        super().__init__(_config=_config, tapestry=tapestry, **inputs)

    def identity_settings(self) -> dict[str, object]:
        return {**super().identity_settings(), "max_chars": self.max_chars, "overlap": self.overlap}

    async def process(self, documents: object, **_: Any) -> list[TextChunk]:
        return [
            chunk
            for document in _documents(documents)
            for chunk in chunk_document(document, max_chars=self.max_chars, overlap=self.overlap)
        ]


class Embed(Knot):
    """``list[TextChunk]`` → ``Embeddings``: one vector per chunk, by ``embedder``."""

    def __init__(
        self,
        *,
        embedder: Embedder,
        _config: KnotConfig | None = None,
        tapestry: Registrar | None = None,
        **inputs: object,
    ) -> None:
        self.embedder = embedder
        super().__init__(_config=_config, tapestry=tapestry, **inputs)

    def identity_settings(self) -> dict[str, object]:
        return {**super().identity_settings(), "embedder": self.embedder.identity}

    async def process(self, chunks: Sequence[TextChunk], **_: Any) -> Embeddings:
        chunks = [TextChunk.model_validate(c) for c in chunks]
        vectors = await self.embedder.embed([c.text for c in chunks])
        if len(vectors) != len(chunks):
            raise ValueError(
                f"embedder {self.embedder.identity} returned {len(vectors)} vectors "
                f"for {len(chunks)} chunks"
            )
        return Embeddings(
            embedder=self.embedder.identity,
            items=tuple(
                EmbeddedChunk(chunk=c, vector=tuple(v))
                for c, v in zip(chunks, vectors, strict=True)
            ),
        )


class IndexUpsert(Knot):
    """``Embeddings`` → ``IndexWrite``: writes the chunks into ``index``, replacing
    every document they belong to."""

    def __init__(
        self,
        *,
        index: VectorIndex,
        _config: KnotConfig | None = None,
        tapestry: Registrar | None = None,
        **inputs: object,
    ) -> None:
        self.index = index
        super().__init__(_config=_config, tapestry=tapestry, **inputs)

    def identity_settings(self) -> dict[str, object]:
        return {**super().identity_settings(), "index": self.index.identity}

    async def process(self, embeddings: Embeddings, **_: Any) -> IndexWrite:
        await self.index.upsert(embeddings.embedder, embeddings.items)
        return IndexWrite(
            index=self.index.identity,
            embedder=embeddings.embedder,
            documents=tuple(sorted({i.chunk.doc_id for i in embeddings.items})),
            chunk_hashes=tuple(i.chunk.hash for i in embeddings.items),
        )


class Retrieve(Knot):
    """``question`` → ``Retrieval``: the ``k`` chunks of ``index`` nearest to the
    question's vector. ``where`` (a dict input) filters on chunk metadata (``doc_id``
    for the document). Wire an ``IndexUpsert`` to ``after`` to retrieve once that
    write is done (and to have lineage show it)."""

    def __init__(
        self,
        *,
        embedder: Embedder,
        index: VectorIndex,
        k: int = 4,
        _config: KnotConfig | None = None,
        tapestry: Registrar | None = None,
        **inputs: object,
    ) -> None:
        if k < 1:
            raise WiringError(f"Retrieve: k must be at least 1, got {k}")
        self.embedder = embedder
        self.index = index
        self.k = k
        super().__init__(_config=_config, tapestry=tapestry, **inputs)

    def identity_settings(self) -> dict[str, object]:
        return {
            **super().identity_settings(),
            "embedder": self.embedder.identity,
            "index": self.index.identity,
            "k": self.k,
        }

    async def process(
        self,
        question: str,
        after: IndexWrite | None = None,
        where: Mapping[str, str] | None = None,
        **_: Any,
    ) -> Retrieval:
        if not question.strip():
            raise ValueError("Retrieve: the question is empty")
        (vector,) = await self.embedder.embed([question])
        hits = await self.index.query(self.embedder.identity, vector, self.k, where=where)
        return Retrieval(question=question, index=self.index.identity, hits=tuple(hits))


class Generate(Knot):
    """``Retrieval`` → ``Answer``: ``llm`` answers the question from the retrieved
    chunks (the best ``max_chunks`` of them); the answer lists the hashes of the
    chunks it was grounded on."""

    def __init__(
        self,
        *,
        llm: LLM,
        max_chunks: int | None = None,
        _config: KnotConfig | None = None,
        tapestry: Registrar | None = None,
        **inputs: object,
    ) -> None:
        if max_chunks is not None and max_chunks < 1:
            raise WiringError(f"Generate: max_chunks must be at least 1, got {max_chunks}")
        self.llm = llm
        self.max_chunks = max_chunks
        super().__init__(_config=_config, tapestry=tapestry, **inputs)

    def identity_settings(self) -> dict[str, object]:
        return {
            **super().identity_settings(),
            "llm": self.llm.identity,
            "max_chunks": self.max_chunks,
        }

    async def process(self, retrieval: Retrieval, **_: Any) -> Answer:
        context = [hit.chunk for hit in retrieval.hits[: self.max_chunks]]
        text = await self.llm.answer(retrieval.question, context)
        return Answer(
            question=retrieval.question,
            text=text,
            model=self.llm.identity,
            grounded_on=tuple(c.hash for c in context),
            sources=tuple(dict.fromkeys(c.doc_id for c in context)),
        )
