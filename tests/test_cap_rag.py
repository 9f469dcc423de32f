"""The RAG capability on its embedded engines: chunking, the bundled embedding model,
the SQLite vector index, the language models and a full tapestry's lineage."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import httpx
import networkx as nx
import pytest
from _rag_helpers import (
    QUESTIONS,
    CorpusVectors,
    MemoEmbedder,
    check_vector_index,
    corpus_vectors,
    rag_tapestry,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pirn_like import KnotConfig, Parameter, RunRequest, Tapestry, content_hash
from pirn_like.capabilities.rag import (
    Answer,
    Chunk,
    Document,
    Embed,
    EmbedderIdentity,
    ExtractiveLLM,
    Generate,
    IndexUpsert,
    LLMError,
    LocalEmbedder,
    OpenAICompatibleLLM,
    SQLiteVectorIndex,
    TextChunk,
)
from pirn_like.capabilities.rag._chunking import chunk_document

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="session")
def corpus() -> CorpusVectors:
    return corpus_vectors()


# --- chunking ---------------------------------------------------------------


def test_chunks_pack_whole_sentences_within_the_window() -> None:
    text = " ".join(f"Sentence number {i} is here." for i in range(20))
    chunks = chunk_document(Document(id="d", text=text), max_chars=100, overlap=40)
    assert len(chunks) > 3
    for i, c in enumerate(chunks):
        assert c.index == i
        assert c.doc_id == "d"
        assert len(c.text) <= 100
        assert c.text.startswith("Sentence")
        assert c.text.endswith(".")
        assert text[c.start : c.start + len(c.text)] == c.text
    # Each window after the first repeats the previous window's last sentence.
    for before, after in itertools.pairwise(chunks):
        last = before.text.rsplit(". ", 1)[-1]
        assert after.text.startswith(last.removesuffix(".")), (before.text, after.text)


def test_a_sentence_longer_than_the_window_is_cut_with_overlap() -> None:
    words = " ".join(f"w{i:03d}" for i in range(100))  # one 499-character "sentence"
    chunks = chunk_document(Document(id="long", text=words), max_chars=60, overlap=20)
    assert all(len(c.text) <= 60 for c in chunks)
    assert chunks[0].text.startswith("w000")
    assert chunks[-1].text.endswith("w099")
    covered = "".join(words[c.start : c.start + len(c.text)] for c in chunks)
    assert all(f"w{i:03d}" in covered for i in range(100))
    for before, after in itertools.pairwise(chunks):
        assert after.start < before.start + len(before.text)  # they overlap


def test_chunk_hashes_name_document_position_and_text() -> None:
    a = chunk_document(Document(id="a", text="Same text."), max_chars=50, overlap=0)
    b = chunk_document(Document(id="b", text="Same text."), max_chars=50, overlap=0)
    again = chunk_document(Document(id="a", text="Same text."), max_chars=50, overlap=0)
    assert a[0].hash == again[0].hash
    assert a[0].hash != b[0].hash
    assert a[0].hash.startswith("sha256:")


async def test_chunk_knot_takes_text_documents_or_dicts_and_refuses_duplicates() -> None:
    with Tapestry() as t:
        docs = Parameter("docs", object)
        Chunk(documents=docs, max_chars=200, overlap=0, _config=KnotConfig(id="chunks"))
    plain = await t.run(RunRequest(parameters={"docs": "Just a text."}))
    assert [c.doc_id for c in plain.outputs["chunks"]] == ["text"]
    dicts = await t.run(
        RunRequest(parameters={"docs": [{"id": "x", "text": "One.", "metadata": {"k": "v"}}]})
    )
    assert dicts.outputs["chunks"][0].metadata == {"k": "v"}
    twice = await t.run(RunRequest(parameters={"docs": [{"id": "x", "text": "a"}] * 2}))
    assert not twice.succeeded
    assert "document id 'x' appears twice" in str(twice.exceptions)


def test_chunk_settings_are_checked_when_built() -> None:
    with pytest.raises(ValueError, match="overlap < max_chars"):
        Chunk(documents="x", max_chars=10, overlap=10, _config=KnotConfig(id="c"))


# --- the bundled embedding model ---------------------------------------------


def test_the_model_ranks_similar_sentences_as_sentence_transformers_does(
    corpus: CorpusVectors,
) -> None:
    a, b, c = anyio.run(
        corpus.embedder.embed,
        ["A man is eating food.", "A man is eating a piece of bread.", "A man is riding a horse."],
    )

    def cos(x: Sequence[float], y: Sequence[float]) -> float:
        return sum(p * q for p, q in zip(x, y, strict=True))

    assert abs(cos(a, a) - 1.0) < 1e-5
    # sentence-transformers reports 0.7553 for this pair with all-MiniLM-L6-v2.
    assert abs(cos(a, b) - 0.7553) < 2e-3
    assert cos(a, c) < cos(a, b)


def test_the_model_loads_from_the_installed_wheel_even_offline(tmp_path: Path) -> None:
    code = (
        "import anyio; from pirn_like.capabilities.rag import LocalEmbedder;"
        "v = anyio.run(LocalEmbedder().embed, ['hi']); print(len(v[0]))"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path), "HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "384"
    assert not any(tmp_path.iterdir())  # nothing was downloaded or cached


def test_importing_the_package_loads_no_optional_library() -> None:
    code = (
        "import sys, pirn_like.capabilities.rag;"
        "print([m for m in ('numpy', 'tokenizers', 'httpx', 'aiosqlite', 'asyncpg')"
        " if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_model_dir_without_weights_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 8, "model_type": "bert"}))
    embedder = LocalEmbedder(model_dir=tmp_path)
    with pytest.raises(Exception, match=r"model\.safetensors"):
        anyio.run(embedder.embed, ["x"])


# --- retrieval quality on the shipped corpus ------------------------------------


async def test_each_question_retrieves_its_document_first(
    corpus: CorpusVectors, tmp_path: Path
) -> None:
    async with SQLiteVectorIndex(f"sqlite:///{tmp_path}/rag.db") as index:
        await index.upsert(corpus.identity, corpus.items)
        vectors = await corpus.embedder.embed(list(QUESTIONS))
        for (question, expected), vector in zip(QUESTIONS.items(), vectors, strict=True):
            hits = await index.query(corpus.identity, vector, 3)
            assert hits[0].chunk.doc_id == expected, (question, [h.chunk.doc_id for h in hits])
            assert hits[0].score > hits[-1].score


# --- the SQLite vector index -----------------------------------------------------


async def test_sqlite_index_keeps_the_vector_index_promises(tmp_path: Path) -> None:
    await check_vector_index(lambda: SQLiteVectorIndex(tmp_path / "toy.db", table="toy"))


def test_index_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="table"):
        SQLiteVectorIndex("sqlite:///x.db", table="x; DROP TABLE y")
    with pytest.raises(ValueError, match="sqlite://"):
        SQLiteVectorIndex("postgresql://u:secret@h/db")


# --- language models ---------------------------------------------------------------


def _chunks(*texts: str) -> list[TextChunk]:
    return [
        chunk_document(Document(id=f"d{i}", text=t), max_chars=500, overlap=0)[0]
        for i, t in enumerate(texts)
    ]


async def test_extractive_llm_quotes_the_best_sentences_and_cites_them() -> None:
    llm = ExtractiveLLM(max_sentences=1)
    context = _chunks(
        "Cats sleep a lot. They purr.", "The Moon pulls the oceans. That makes tides."
    )
    answer = await llm.answer("What makes the tides?", context)
    assert answer == "That makes tides. [2]"
    assert await llm.answer("What makes the tides?", context) == answer
    assert "do not know" in await llm.answer("Anything?", [])


class _ChatServer:
    """A local OpenAI-compatible chat endpoint that fails as scripted first."""

    def __init__(self, failures: Sequence[int] = ()) -> None:
        self.failures = list(failures)
        self.requests: list[dict[str, Any]] = []
        self.auth: list[str | None] = []
        self.app = Starlette(routes=[Route("/v1/chat/completions", self.chat, methods=["POST"])])

    async def chat(self, request: Request) -> JSONResponse:
        self.auth.append(request.headers.get("authorization"))
        self.requests.append(await request.json())
        if self.failures:
            return JSONResponse({"error": "scripted"}, status_code=self.failures.pop(0))
        question = self.requests[-1]["messages"][-1]["content"].rsplit("Question: ", 1)[-1]
        return JSONResponse(
            {"choices": [{"message": {"role": "assistant", "content": f"A: {question}"}}]}
        )

    def llm(self, **options: Any) -> OpenAICompatibleLLM:
        options.setdefault("backoff", 0)
        return OpenAICompatibleLLM(
            "tiny-model",
            base_url="http://llm.local/v1",
            transport=httpx.ASGITransport(app=self.app),
            **options,
        )


async def test_openai_client_sends_the_grounded_prompt_with_the_key() -> None:
    server = _ChatServer()
    async with server.llm(api_key="sk-test-123") as llm:
        reply = await llm.answer("Why?", _chunks("Because of gravity."))
    assert reply == "A: Why?"
    body = server.requests[0]
    assert body["model"] == "tiny-model"
    assert body["temperature"] == 0.0
    assert "[1] (document d0)\nBecause of gravity." in body["messages"][-1]["content"]
    assert body["messages"][0]["role"] == "system"
    assert server.auth == ["Bearer sk-test-123"]
    assert "sk-test" not in llm.identity
    assert "sk-test" not in repr(llm)


async def test_openai_client_reads_the_key_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MY_LLM_KEY", "from-env")
    server = _ChatServer()
    async with server.llm(api_key_env="MY_LLM_KEY") as llm:
        await llm.answer("Q?", [])
    monkeypatch.delenv("MY_LLM_KEY")
    async with server.llm(api_key_env="MY_LLM_KEY") as llm:
        await llm.answer("Q?", [])
    assert server.auth == ["Bearer from-env", None]


async def test_openai_client_retries_rate_limits_and_server_errors() -> None:
    server = _ChatServer(failures=[429, 503])
    async with server.llm(max_attempts=3) as llm:
        assert await llm.answer("Q?", []) == "A: Q?"
    assert len(server.requests) == 3


async def test_openai_client_gives_up_after_max_attempts() -> None:
    server = _ChatServer(failures=[500, 500, 500])
    async with server.llm(max_attempts=2, api_key="sk-secret") as llm:
        with pytest.raises(LLMError, match="gave up after 2 attempts: HTTP 500") as info:
            await llm.answer("Q?", [])
    assert len(server.requests) == 2
    assert "sk-secret" not in str(info.value)


async def test_openai_client_does_not_retry_a_bad_request() -> None:
    server = _ChatServer(failures=[400])
    async with server.llm(max_attempts=5) as llm:
        with pytest.raises(LLMError, match="HTTP 400"):
            await llm.answer("Q?", [])
    assert len(server.requests) == 1


# --- knots in a tapestry, and their lineage ---------------------------------------------


async def test_an_answer_is_grounded_on_chunks_its_lineage_leads_back_to(
    corpus: CorpusVectors, tmp_path: Path
) -> None:
    embedder = MemoEmbedder(corpus)
    async with SQLiteVectorIndex(tmp_path / "rag.db") as index:
        t = rag_tapestry(embedder, index)
        question = "Why does naturally leavened bread taste sour?"
        result = await t.run(
            RunRequest(parameters={"documents": corpus.documents, "question": question})
        )
        assert result.succeeded, result.exceptions
        answer: Answer = result.outputs["answer"]
        assert answer.sources[0] == "sourdough"
        assert "[1]" in answer.text
        assert "acid" in answer.text
        chunk_hashes = {c.hash for c in result.outputs["chunk"]}
        assert len(answer.grounded_on) == 3
        assert set(answer.grounded_on) <= chunk_hashes
        assert result.outputs["upsert"].chunk_hashes == tuple(
            c.hash for c in result.outputs["chunk"]
        )

        # Lineage: the answer's hash leads back through retrieval, the index write and
        # the embeddings to the chunks and the documents parameter.
        history = t.history
        answer_hash = content_hash(answer)
        assert result.lineage_for("answer").output_hash == answer_hash
        graph = await history.provenance(answer_hash)
        upstream = nx.ancestors(graph, answer_hash)
        for knot_id in (
            "chunk",
            "embed",
            "upsert",
            "retrieve",
            "param:documents",
            "param:question",
        ):
            assert result.lineage_for(knot_id).output_hash in upstream, knot_id
        generate = result.lineage_for("answer")
        assert generate.parent_input_hashes == {
            "retrieval": content_hash(result.outputs["retrieve"])
        }
        # The retrieval the answer consumed holds exactly the grounding chunks.
        retrieval = result.outputs["retrieve"]
        assert tuple(h.chunk.hash for h in retrieval.hits) == answer.grounded_on
        consumers = await history.query_lineage_by_input_hash(content_hash(retrieval))
        assert [r.knot_id for r in consumers] == ["answer"]

        # The engines are part of each knot's identity; the data is not.
        other_llm = Generate(
            retrieval="x", llm=ExtractiveLLM(max_sentences=1), _config=KnotConfig(id="g")
        )
        assert other_llm.config_hash != t["answer"].config_hash


async def test_embed_config_hash_names_the_model(corpus: CorpusVectors, tmp_path: Path) -> None:
    class Renamed(MemoEmbedder):
        @property
        def identity(self) -> EmbedderIdentity:
            return corpus.identity.model_copy(update={"version": "other"})

    same = Embed(chunks=[], embedder=MemoEmbedder(corpus), _config=KnotConfig(id="e"))
    again = Embed(chunks=[], embedder=MemoEmbedder(corpus), _config=KnotConfig(id="e"))
    other = Embed(chunks=[], embedder=Renamed(corpus), _config=KnotConfig(id="e"))
    assert same.config_hash == again.config_hash != other.config_hash
    a = IndexUpsert(
        embeddings=[], index=SQLiteVectorIndex(tmp_path / "a.db"), _config=KnotConfig(id="u")
    )
    b = IndexUpsert(
        embeddings=[], index=SQLiteVectorIndex(tmp_path / "b.db"), _config=KnotConfig(id="u")
    )
    assert a.config_hash != b.config_hash
