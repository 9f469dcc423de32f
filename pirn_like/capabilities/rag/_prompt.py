"""The chat prompt a RAG answer is asked with: numbered context chunks, then the question."""

from __future__ import annotations

from collections.abc import Sequence

from pirn_like.capabilities.rag._models import TextChunk

__all__ = ["SYSTEM_PROMPT", "render_messages"]

SYSTEM_PROMPT = (
    "Answer the question using only the numbered context passages. Cite the passages "
    "you use as [n]. If the passages do not contain the answer, say that you do not know."
)


def render_messages(question: str, context: Sequence[TextChunk]) -> list[dict[str, str]]:
    """OpenAI-style chat messages for ``question`` grounded on ``context``."""
    passages = "\n\n".join(
        f"[{n}] (document {chunk.doc_id})\n{chunk.text}" for n, chunk in enumerate(context, 1)
    )
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"Context:\n{passages}\n\nQuestion: {question}"},
    ]
