"""The errors of the RAG capability, all under ``RagError``."""

from __future__ import annotations

from pirn_like._errors import PirnLikeError

__all__ = ["EmbeddingModelError", "LLMError", "RagError", "VectorIndexError"]


class RagError(PirnLikeError):
    """Base class of the RAG capability's errors."""


class EmbeddingModelError(RagError, RuntimeError):
    """The embedding model cannot be found, read or run."""


class VectorIndexError(RagError, RuntimeError):
    """A vector index refused an operation (wrong dimension, other embedder, closed)."""


class LLMError(RagError, RuntimeError):
    """A language model call failed for good (after the retries it was allowed)."""
