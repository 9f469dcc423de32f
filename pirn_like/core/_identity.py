"""Stable identities of knots: config hashes and the identity of callables."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from pirn_like._errors import UnhashableValueError
from pirn_like._ids import ContentHash
from pirn_like.core._hashing import combine_hashes, content_hash

__all__ = ["callable_identity", "config_hash"]


def callable_identity(fn: Callable[..., Any]) -> str:
    """A stable text naming a callable: its qualified name plus a digest of its source.

    The source (not bytecode) keeps the identity stable across Python versions and
    tells apart two lambdas defined in the same scope. Callables without Python
    source (builtins) are named only.
    """
    if isinstance(fn, functools.partial):
        inner = callable_identity(fn.func)
        args = content_hash([list(fn.args), dict(fn.keywords)])
        return f"partial({inner}, {args})"
    name = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__qualname__)}"
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):
        return name
    return f"{name}#{combine_hashes((source,))}"


def config_hash(
    knot_class: str,
    settings: Mapping[str, object],
    constants: Mapping[str, object],
    *,
    knot_id: str,
) -> ContentHash:
    """Hash what determines a knot's output besides its inputs.

    Callables among the constants are identified by ``callable_identity``. Knots
    whose settings and constants are all plain scalars share a cached hash.
    """
    key = _scalar_key(knot_class, settings, constants)
    if key is not None:
        cached = _scalar_hashes.get(key)
        if cached is None:
            if len(_scalar_hashes) >= _SCALAR_CACHE_SIZE:
                _scalar_hashes.clear()
            cached = _scalar_hashes[key] = _config_hash(
                knot_class, settings, constants, knot_id=knot_id
            )
        return cached
    return _config_hash(knot_class, settings, constants, knot_id=knot_id)


_SCALARS = frozenset({str, int, float, bool, type(None)})
_SCALAR_CACHE_SIZE = 4096
_scalar_hashes: dict[tuple[object, ...], ContentHash] = {}


def _scalar_key(
    knot_class: str, settings: Mapping[str, object], constants: Mapping[str, object]
) -> tuple[object, ...] | None:
    # The type goes into the key: 1, 1.0 and True are equal dict keys but hash apart.
    key: list[object] = [knot_class]
    for mapping in (settings, constants):
        for name, value in mapping.items():
            if type(value) not in _SCALARS:
                return None
            key.append((name, type(value), value))
        key.append("|")
    return tuple(key)


def _config_hash(
    knot_class: str,
    settings: Mapping[str, object],
    constants: Mapping[str, object],
    *,
    knot_id: str,
) -> ContentHash:
    parts = [knot_class]
    for mapping in (settings, constants):
        for name in sorted(mapping):
            value = mapping[name]
            if isinstance(value, type):
                parts.append(f"{name}=type:{value.__module__}.{value.__qualname__}")
                continue
            if callable(value):
                parts.append(f"{name}=callable:{callable_identity(value)}")
                continue
            try:
                parts.append(f"{name}={content_hash(value)}")
            except UnhashableValueError as exc:
                raise exc.located(f"knot {knot_id!r}, constant {name!r}") from None
        parts.append("|")
    return combine_hashes(parts)
