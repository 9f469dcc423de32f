"""Retrieval-augmented generation as knots, on the embedded defaults.

Documents are chunked, embedded by the all-MiniLM-L6-v2 model shipped in a wheel,
written to a SQLite vector index; a question retrieves the nearest chunks and a
deterministic extractive model answers from them. The answer lists the hashes of the
chunks it was grounded on, and lineage leads from it back to the documents.

Run it with ``python examples/rag.py`` (needs ``pip install 'pirn-like[rag]'``).
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import networkx as nx

from pirn_like import KnotConfig, Parameter, RunRequest, Tapestry, content_hash
from pirn_like.capabilities.rag import (
    Answer,
    Chunk,
    Document,
    Embed,
    ExtractiveLLM,
    Generate,
    IndexUpsert,
    LocalEmbedder,
    Retrieve,
    SQLiteVectorIndex,
)

DOCUMENTS = [
    Document(
        id="tides",
        text="Tides are the rise and fall of the sea caused by the Moon's gravity. "
        "Spring tides, with the largest range, happen when the Sun and Moon line up.",
    ),
    Document(
        id="sourdough",
        text="Sourdough is leavened by a starter of wild yeast and lactic acid bacteria. "
        "The acids the bacteria make give the bread its sour taste.",
    ),
    Document(
        id="glaciers",
        text="A glacier is a slow river of ice. As it flows it grinds the rock below "
        "and carves U-shaped valleys.",
    ),
    Document(
        id="bees",
        text="A honey bee that finds flowers tells the others where they are with a "
        "waggle dance whose angle gives the direction.",
    ),
]


def build(index: SQLiteVectorIndex) -> Tapestry:
    embedder = LocalEmbedder()
    with Tapestry() as t:
        documents = Parameter("documents", list[Document])
        question = Parameter("question", str)
        chunks = Chunk(
            documents=documents, max_chars=300, overlap=60, _config=KnotConfig(id="chunk")
        )
        vectors = Embed(chunks=chunks, embedder=embedder, _config=KnotConfig(id="embed"))
        written = IndexUpsert(embeddings=vectors, index=index, _config=KnotConfig(id="upsert"))
        found = Retrieve(
            question=question,
            after=written,
            embedder=embedder,
            index=index,
            k=2,
            _config=KnotConfig(id="retrieve"),
        )
        Generate(
            retrieval=found, llm=ExtractiveLLM(max_sentences=1), _config=KnotConfig(id="answer")
        )
    return t


async def main() -> None:
    with tempfile.TemporaryDirectory() as workdir:
        async with SQLiteVectorIndex(Path(workdir) / "rag.db") as index:
            t = build(index)
            question = "Why does sourdough bread taste sour?"
            result = await t.run(
                RunRequest(parameters={"documents": DOCUMENTS, "question": question})
            )
            answer: Answer = result.outputs["answer"]
            print(f"Q: {question}")
            print(f"A: {answer.text}")
            print(f"grounded on {len(answer.grounded_on)} chunks: {answer.grounded_on[0][:19]}...")

            # Lineage: from the answer's hash back to the documents it came from.
            graph = await t.history.provenance(content_hash(answer))
            upstream = nx.ancestors(graph, content_hash(answer))
            documents_hash = result.lineage_for("param:documents").output_hash
            print(
                f"answer from {answer.sources[0]}; lineage reaches the documents: "
                f"{documents_hash in upstream}"
            )


if __name__ == "__main__":
    asyncio.run(main())
