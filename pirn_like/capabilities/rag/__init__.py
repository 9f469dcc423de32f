"""RAG as knots: ``Chunk`` → ``Embed`` → ``IndexUpsert``, then ``Retrieve`` → ``Generate``.

Engines: ``LocalEmbedder`` (a sentence-embedding model shipped in a wheel, run with
numpy), ``SQLiteVectorIndex`` (embedded, exact cosine) and ``PgVectorIndex``
(PostgreSQL + pgvector), ``OpenAICompatibleLLM`` and the deterministic
``ExtractiveLLM``. Importing this package loads none of numpy, tokenizers, httpx or
the database drivers; each loads on first use (``pip install 'pirn-like[rag]'``).
"""

from typing import TYPE_CHECKING

from pirn_like._exports import lazy_exports, publish
from pirn_like.capabilities.rag._errors import (
    EmbeddingModelError,
    LLMError,
    RagError,
    VectorIndexError,
)
from pirn_like.capabilities.rag._extractive import ExtractiveLLM
from pirn_like.capabilities.rag._knots import Chunk, Embed, Generate, IndexUpsert, Retrieve
from pirn_like.capabilities.rag._models import (
    Answer,
    Document,
    EmbeddedChunk,
    EmbedderIdentity,
    Embeddings,
    IndexWrite,
    Retrieval,
    ScoredChunk,
    TextChunk,
)
from pirn_like.capabilities.rag._protocol import LLM, Embedder, VectorIndex

if TYPE_CHECKING:
    from pirn_like.capabilities.rag._local_embedder import LocalEmbedder
    from pirn_like.capabilities.rag._openai import OpenAICompatibleLLM
    from pirn_like.capabilities.rag._pgvector import PgVectorIndex
    from pirn_like.capabilities.rag._sqlite_index import SQLiteVectorIndex

_LAZY = {
    "LocalEmbedder": "pirn_like.capabilities.rag._local_embedder",
    "OpenAICompatibleLLM": "pirn_like.capabilities.rag._openai",
    "PgVectorIndex": "pirn_like.capabilities.rag._pgvector",
    "SQLiteVectorIndex": "pirn_like.capabilities.rag._sqlite_index",
}

__all__ = [
    "LLM",
    "Answer",
    "Chunk",
    "Document",
    "Embed",
    "EmbeddedChunk",
    "Embedder",
    "EmbedderIdentity",
    "EmbeddingModelError",
    "Embeddings",
    "ExtractiveLLM",
    "Generate",
    "IndexUpsert",
    "IndexWrite",
    "LLMError",
    "LocalEmbedder",
    "OpenAICompatibleLLM",
    "PgVectorIndex",
    "RagError",
    "Retrieval",
    "Retrieve",
    "SQLiteVectorIndex",
    "ScoredChunk",
    "TextChunk",
    "VectorIndex",
    "VectorIndexError",
]

publish(__name__, globals(), [n for n in __all__ if n not in _LAZY])
__getattr__ = lazy_exports(__name__, globals(), _LAZY)
