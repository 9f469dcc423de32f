"""Splitting a document into overlapping windows of characters, on sentence bounds
where it can."""

from __future__ import annotations

import re
from collections.abc import Iterator

from pirn_like.capabilities.rag._models import Document, TextChunk, chunk_hash

__all__ = ["chunk_document"]

# A sentence ends at ., ! or ? followed by white space, or at a blank line.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n\s*\n")


def _sentences(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each sentence of ``text``, without surrounding white space."""
    start = 0
    for match in _SENTENCE_END.finditer(text):
        yield from _trimmed(text, start, match.start())
        start = match.end()
    yield from _trimmed(text, start, len(text))


def _trimmed(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start < end:
        yield start, end


def _pieces(text: str, max_chars: int, overlap: int) -> Iterator[tuple[int, int]]:
    """Sentences, with any longer than ``max_chars`` cut into windows (at white space
    when there is some in the window's second half)."""
    for start, end in _sentences(text):
        while end - start > max_chars:
            cut = start + max_chars
            space = text.rfind(" ", start + max_chars // 2, cut)
            if space > start:
                cut = space
            yield start, cut
            start = max(cut - overlap, start + 1)
            while start < end and text[start].isspace():
                start += 1
        yield start, end


def chunk_document(document: Document, *, max_chars: int, overlap: int) -> list[TextChunk]:
    """The chunks of ``document``: sentences packed into windows of at most
    ``max_chars`` characters; each window after the first starts with the last
    sentences of the one before, up to ``overlap`` characters of them."""
    text = document.text
    windows: list[tuple[int, int]] = []
    current: list[tuple[int, int]] = []
    for piece in _pieces(text, max_chars, overlap):
        if current and piece[1] - current[0][0] > max_chars:
            windows.append((current[0][0], current[-1][1]))
            # Carry the tail of this window into the next, as long as it fits both
            # the overlap and, with the new piece, the window.
            carried: list[tuple[int, int]] = []
            for sentence in reversed(current):
                if (
                    current[-1][1] - sentence[0] > overlap
                    or piece[1] - sentence[0] > max_chars
                    or sentence[0] <= current[0][0]
                ):
                    break
                carried.insert(0, sentence)
            current = carried
        current.append(piece)
    if current:
        windows.append((current[0][0], current[-1][1]))
    return [
        TextChunk(
            doc_id=document.id,
            index=i,
            text=text[start:end],
            start=start,
            metadata=document.metadata,
            hash=chunk_hash(document.id, i, text[start:end], document.metadata),
        )
        for i, (start, end) in enumerate(windows)
    ]
