"""A BERT sentence encoder in numpy: safetensors weights in, mean-pooled unit vectors out.

Enough of BERT for sentence-transformers models such as all-MiniLM-L6-v2 (absolute
positions, GELU, post-layer-norm, mean pooling), so the bundled model runs with numpy
alone: no torch, no ONNX runtime.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pirn_like.capabilities.rag._errors import EmbeddingModelError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Array = npt.NDArray[np.float32]

__all__ = ["BertEncoder", "read_safetensors"]

_DTYPES = {"F32": "<f4", "F16": "<f2", "I64": "<i8"}


def read_safetensors(path: Path) -> dict[str, Any]:
    """Every tensor of a ``.safetensors`` file as a numpy array (float tensors as float32).

    The format is an 8-byte little-endian header length, a JSON header naming each
    tensor's dtype, shape and byte range, then the raw data: nothing is executed.
    """
    import numpy as np

    data = path.read_bytes()
    if len(data) < 8:
        raise EmbeddingModelError(f"{path} is not a safetensors file (too short)")
    (size,) = struct.unpack("<Q", data[:8])
    try:
        header: dict[str, Any] = json.loads(data[8 : 8 + size])
    except ValueError as exc:
        raise EmbeddingModelError(f"{path} is not a safetensors file: {exc}") from exc
    base = 8 + size
    tensors: dict[str, Any] = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        dtype = _DTYPES.get(spec["dtype"])
        if dtype is None:
            raise EmbeddingModelError(
                f"{path}: tensor {name!r} has unsupported dtype {spec['dtype']}"
            )
        start, end = spec["data_offsets"]
        array = np.frombuffer(
            data, dtype=dtype, count=(end - start) // np.dtype(dtype).itemsize, offset=base + start
        ).reshape(spec["shape"])
        tensors[name] = array.astype(np.float32) if dtype == "<f2" else array
    return tensors


@dataclass(frozen=True, slots=True)
class _Layer:
    qkv: Array  # (hidden, 3 * hidden): query, key and value projections side by side
    qkv_bias: Array
    out: Array
    out_bias: Array
    norm1: tuple[Array, Array]
    up: Array
    up_bias: Array
    down: Array
    down_bias: Array
    norm2: tuple[Array, Array]


class BertEncoder:
    """A BERT encoder's forward pass, from a sentence-transformers model directory's
    ``config.json`` and ``model.safetensors``."""

    def __init__(self, config: Mapping[str, Any], weights: Mapping[str, Any]) -> None:
        import numpy as np

        if config.get("model_type") != "bert":
            raise EmbeddingModelError(
                f"only BERT models are supported, the config says {config.get('model_type')!r}"
            )
        if config.get("hidden_act", "gelu") != "gelu":
            raise EmbeddingModelError(f"unsupported activation {config.get('hidden_act')!r}")
        self.hidden = int(config["hidden_size"])
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        prefix = "bert." if "bert.embeddings.word_embeddings.weight" in weights else ""

        def w(name: str) -> Array:
            try:
                return np.ascontiguousarray(weights[prefix + name], dtype=np.float32)
            except KeyError:
                raise EmbeddingModelError(f"the model has no weight {prefix + name!r}") from None

        self.words = w("embeddings.word_embeddings.weight")
        self.positions = w("embeddings.position_embeddings.weight")
        self.token_type = w("embeddings.token_type_embeddings.weight")[0]
        self.norm0 = (w("embeddings.LayerNorm.weight"), w("embeddings.LayerNorm.bias"))
        layers: list[_Layer] = []
        for i in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            attn = p + "attention.self."
            # Stored as (out, in) like torch's Linear: transposed once here, so every
            # product below is activations @ weights.
            layers.append(
                _Layer(
                    qkv=np.ascontiguousarray(
                        np.concatenate(
                            [w(attn + n + ".weight") for n in ("query", "key", "value")]
                        ).T
                    ),
                    qkv_bias=np.concatenate(
                        [w(attn + n + ".bias") for n in ("query", "key", "value")]
                    ),
                    out=np.ascontiguousarray(w(p + "attention.output.dense.weight").T),
                    out_bias=w(p + "attention.output.dense.bias"),
                    norm1=(
                        w(p + "attention.output.LayerNorm.weight"),
                        w(p + "attention.output.LayerNorm.bias"),
                    ),
                    up=np.ascontiguousarray(w(p + "intermediate.dense.weight").T),
                    up_bias=w(p + "intermediate.dense.bias"),
                    down=np.ascontiguousarray(w(p + "output.dense.weight").T),
                    down_bias=w(p + "output.dense.bias"),
                    norm2=(w(p + "output.LayerNorm.weight"), w(p + "output.LayerNorm.bias")),
                )
            )
        self.layers = tuple(layers)
        self.max_positions = self.positions.shape[0]

    def encode(self, ids: npt.NDArray[np.int64], mask: npt.NDArray[np.int64]) -> Array:
        """Unit-length mean-pooled sentence vectors for a padded batch of token ids."""
        import numpy as np

        batch, length = ids.shape
        if length > self.max_positions:
            raise EmbeddingModelError(
                f"{length} tokens is more than the model's {self.max_positions} positions"
            )
        # Activations stay (batch * length, hidden): 2-D products are one BLAS call each.
        x = (self.words[ids] + self.positions[:length] + self.token_type).reshape(-1, self.hidden)
        x = self._norm(x, self.norm0)
        # Padding gets a large negative score, so no token attends to it.
        bias = ((1.0 - mask[:, None, None, :].astype(np.float32)) * -1e9).astype(np.float32)
        dh = self.hidden // self.heads
        scale = np.float32(1.0 / np.sqrt(dh))
        for layer in self.layers:
            qkv = (x @ layer.qkv + layer.qkv_bias).reshape(batch, length, 3, self.heads, dh)
            qkv = qkv.transpose(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(-1, self.hidden)
            x = self._norm(x + context @ layer.out + layer.out_bias, layer.norm1)
            h: Array = _gelu(x @ layer.up + layer.up_bias)
            x = self._norm(x + h @ layer.down + layer.down_bias, layer.norm2)
        x = x.reshape(batch, length, self.hidden)
        weights = mask.astype(np.float32)[:, :, None]
        pooled = (x * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)

    def _norm(self, x: npt.NDArray[Any], params: tuple[Array, Array]) -> Array:
        import numpy as np

        mean = x.mean(axis=-1, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        return ((x - mean) / np.sqrt(var + self.eps)) * params[0] + params[1]


def _gelu(x: Array) -> Array:
    """GELU with the exact erf, as BERT was trained (erf by Abramowitz-Stegun 7.1.26,
    error under 1.5e-7, since numpy has no erf)."""
    import numpy as np

    z = x * np.float32(1 / np.sqrt(2))
    sign = np.sign(z)
    a = np.abs(z)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    erf = sign * (1.0 - poly * np.exp(-a * a))
    return (0.5 * x * (1.0 + erf)).astype(np.float32)
