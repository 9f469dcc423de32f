"""``ExtractiveLLM``: a deterministic stand-in for a language model, for tests and demos.

It answers with the context sentences that share the most words with the question,
each followed by the number of its passage, so the same question and chunks always
give the same answer, offline and instantly.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pirn_like.capabilities.rag._models import TextChunk

__all__ = ["ExtractiveLLM"]

_WORD = re.compile(r"[a-z0-9]+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "do",
        "does",
        "for",
        "from",
        "how",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "was",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "with",
    ]
)


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP_WORDS}


class ExtractiveLLM:
    """Answers with up to ``max_sentences`` sentences quoted from the context."""

    def __init__(self, *, max_sentences: int = 2) -> None:
        if max_sentences < 1:
            raise ValueError(
                f"ExtractiveLLM: max_sentences must be at least 1, got {max_sentences}"
            )
        self.max_sentences = max_sentences

    @property
    def identity(self) -> str:
        return f"extractive(max_sentences={self.max_sentences})"

    async def answer(self, question: str, context: Sequence[TextChunk]) -> str:
        """The best-matching sentences, in passage order, each cited as ``[n]``."""
        asked = _words(question)
        candidates: list[tuple[int, int, int, str]] = []  # (-overlap, passage, position, text)
        for n, chunk in enumerate(context, 1):
            for position, sentence in enumerate(_SENTENCE.split(chunk.text.strip())):
                if sentence:
                    candidates.append((-len(asked & _words(sentence)), n, position, sentence))
        if not candidates:
            return "I do not know: no passage was retrieved for this question."
        best = sorted(candidates)[: self.max_sentences]
        if best[0][0] == 0:
            best = best[:1]  # nothing matches: quote the top passage's first sentence
        return " ".join(
            f"{text} [{n}]" for _, n, _, text in sorted(best, key=lambda c: (c[1], c[2]))
        )

    def __repr__(self) -> str:
        return f"ExtractiveLLM(max_sentences={self.max_sentences})"
