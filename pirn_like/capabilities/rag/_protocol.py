"""The engines a RAG tapestry talks to: an embedder, a vector index and a language model.

Each is a structural protocol; the implementations in this package are examples, and
any object with these methods works. Engines do no I/O when built and open lazily on
first use; ``aclose`` (or ``async with``) releases them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, Self

from pirn_like.capabilities.rag._models import (
    EmbeddedChunk,
    EmbedderIdentity,
    ScoredChunk,
    TextChunk,
)

__all__ = ["LLM", "Embedder", "VectorIndex"]


class Embedder(Protocol):
    """Turns texts into unit-length vectors of one fixed dimension.

    ``identity`` is known without loading anything (it enters the ``Embed`` knot's
    config hash). ``embed`` must not block the event loop and returns one vector per
    text, in order.
    """

    @property
    def identity(self) -> EmbedderIdentity: ...

    async def embed(self, texts: Sequence[str]) -> list[tuple[float, ...]]: ...


class VectorIndex(Protocol):
    """Stores chunks with their vectors and finds the nearest to a query vector.

    ``identity`` is a stable, secret-free description (kind, redacted URL, table).
    ``upsert`` replaces every document it is given a chunk of, in one transaction:
    chunks of those documents not in ``items`` are removed. An index holds vectors of
    one embedder: ``upsert`` with another raises ``VectorIndexError``. ``query`` returns
    at most ``k`` chunks by descending cosine similarity (ties by document id, then
    chunk index); ``where`` keeps chunks whose metadata has every given key and value
    (the key ``doc_id`` matches the document id).
    """

    @property
    def identity(self) -> str: ...

    async def upsert(self, embedder: EmbedderIdentity, items: Sequence[EmbeddedChunk]) -> None: ...

    async def query(
        self,
        embedder: EmbedderIdentity,
        vector: Sequence[float],
        k: int,
        *,
        where: Mapping[str, str] | None = None,
    ) -> list[ScoredChunk]: ...

    async def aclose(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc_info: object) -> None: ...


class LLM(Protocol):
    """Answers a question from context chunks.

    ``identity`` names the model (and where it runs, without secrets) for the config
    hash and the answer. ``answer`` raises ``LLMError`` when it cannot answer.
    """

    @property
    def identity(self) -> str: ...

    async def answer(self, question: str, context: Sequence[TextChunk]) -> str: ...
