"""Canonical encoding of values and their sha256 content hashes.

Encoding contract, version 1 (:data:`ENCODING_VERSION`): ``canonical_bytes(v)`` is a header
naming the version, then the encoding of ``v``. Every value encodes as one tag byte and a
self-delimiting payload (fixed width, or an 8-byte big-endian length or count first), so the
encoding is a prefix code and no two different values share bytes. Nothing depends on
``hash()``, ``id()``, object ``repr()``, pickle, dict order or the machine's byte order, so
hashes are stable across processes, machines and Python versions. ``content_hash(v)`` is
``"sha256:" + sha256(canonical_bytes(v)).hexdigest()``.

The type is part of the value: ``1``, ``1.0``, ``True``, ``"1"`` and ``b"1"`` all differ, as do
list and tuple, set and frozenset, bytes and bytearray.

- None, True, False: the tag alone. int: signed big-endian two's complement, any size.
- float: 8-byte IEEE 754 big-endian. Every NaN (any sign or payload) encodes as one canonical
  NaN, but ``-0.0`` and ``0.0`` stay different values: their bits differ and so can results
  computed from them (``1 / x``). complex: its two parts, each like a float.
- str: UTF-8, lone surrogates kept (``surrogatepass``). bytes, bytearray: as they are.
- list, tuple: elements in order. dict: entries sorted by the canonical bytes of their key (then
  value), so insertion order does not matter and keys may mix types. set, frozenset: elements
  sorted by their canonical bytes.
- datetime, date, time: ``isoformat()``, which keeps the UTC offset: naive and aware values
  differ, and so do equal instants written with different offsets. timedelta: days, seconds and
  microseconds. Decimal: ``str()``, so ``Decimal("1.0")`` and ``Decimal("1.00")`` differ.
  UUID: its 16 bytes.

Any other value is encoded, in this order of precedence, by: a codec of the given registry
(default :data:`~pirn_like.core._codecs.default_codecs`) as the codec's name and the encoding of
what it reduces the value to; the built-in numpy/pandas/pyarrow codecs; an Enum member as its
class name and ``.value``; a pydantic model as its class name and its declared and extra fields
by name, read as attributes so nested models keep their class; a dataclass as its class name and
all its fields by name (``compare=False`` ones included, as they may still feed computations); a
pathlib path as its class name and ``as_posix()``; a subclass of a natively encoded type (a
namedtuple, OrderedDict, a ``str`` subclass) as its class name and the base type's encoding,
provided it adds no instance state (``__dict__`` entries or ``__slots__``). Anything else raises
UnhashableValueError, never a placeholder hash; a value that contains itself raises ValueError.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import decimal
import enum
import struct
import sys
import uuid
from collections.abc import Callable, Iterable
from functools import partial
from hashlib import sha256
from pathlib import PurePath
from typing import Any

from pirn_like._errors import UnhashableValueError
from pirn_like._ids import ContentHash
from pirn_like.core._codecs import (
    _NATIVE_TYPES,
    Codec,
    CodecRegistry,
    _builtin_codecs,
    _Encoded,
    default_codecs,
    type_name,
)

__all__ = [
    "ENCODING_VERSION",
    "canonical_bytes",
    "combine_hashes",
    "content_hash",
    "type_name",
]

ENCODING_VERSION: int = 1
"""Bumped whenever any value's encoding changes, which changes every hash."""

_HEADER = b"pirn-like/value/" + ENCODING_VERSION.to_bytes(2, "big")
# A separate domain, so a combined hash never equals the content hash of some value.
_COMBINE_HEADER = b"pirn-like/combine/" + ENCODING_VERSION.to_bytes(2, "big")

_length = struct.Struct(">Q").pack
_float = struct.Struct(">d").pack
_timedelta = struct.Struct(">iII").pack
_CANONICAL_NAN = bytes.fromhex("7ff8000000000000")


class _Context:
    __slots__ = ("active", "codecs")

    def __init__(self, codecs: CodecRegistry) -> None:
        self.codecs = codecs
        self.active: set[int] = set()
        """ids of the containers being encoded, to catch cycles."""

    def enter(self, value: object) -> None:
        key = id(value)
        if key in self.active:
            raise ValueError(
                f"cannot content-hash a cyclic value: a {type_name(type(value))} contains "
                "itself (or a codec's reduce returned its own input)"
            )
        self.active.add(key)


def _float_bits(value: float) -> bytes:
    return _float(value) if value == value else _CANONICAL_NAN


def _text(tag: bytes, text: str) -> bytes:
    data = text.encode("utf-8", "surrogatepass")
    return tag + _length(len(data)) + data


def _enc_int(value: int) -> bytes:
    data = value.to_bytes((value.bit_length() + 8) >> 3, "big", signed=True)
    return b"i" + _length(len(data)) + data


def _enc_str(value: str) -> bytes:
    return _text(b"s", value)


def _enc_bytes(value: bytes) -> bytes:
    return b"y" + _length(len(value)) + value


def _enc_bytearray(value: bytearray) -> bytes:
    return b"Y" + _length(len(value)) + value


_LEAF: dict[type, Callable[[Any], bytes]] = {
    type(None): lambda _: b"N",
    bool: lambda v: b"T" if v else b"F",
    int: _enc_int,
    float: lambda v: b"f" + _float_bits(v),
    complex: lambda v: b"c" + _float_bits(v.real) + _float_bits(v.imag),
    str: _enc_str,
    bytes: _enc_bytes,
    bytearray: _enc_bytearray,
    _dt.datetime: lambda v: _text(b"M", v.isoformat()),
    _dt.date: lambda v: _text(b"a", v.isoformat()),
    _dt.time: lambda v: _text(b"h", v.isoformat()),
    _dt.timedelta: lambda v: b"r" + _timedelta(v.days, v.seconds, v.microseconds),
    decimal.Decimal: lambda v: _text(b"m", str(v)),
    uuid.UUID: lambda v: b"u" + v.bytes,
    _Encoded: lambda v: v.data,
}
"""Encoders of the natively handled types without children."""


def _sequence(tag: bytes, parts: list[bytes]) -> bytes:
    return b"".join([tag, _length(len(parts)), *parts])


def _enc_list(value: list[Any], ctx: _Context) -> bytes:
    ctx.enter(value)
    parts = [_encode(item, ctx) for item in value]
    ctx.active.remove(id(value))
    return _sequence(b"l", parts)


def _enc_tuple(value: tuple[Any, ...], ctx: _Context) -> bytes:
    # Only a mutable container can close a cycle through a tuple, and that one is tracked.
    return _sequence(b"t", [_encode(item, ctx) for item in value])


def _enc_dict(value: dict[Any, Any], ctx: _Context) -> bytes:
    ctx.enter(value)
    # Keys encode prefix-free, so sorting key+value bytes sorts by key first.
    parts = sorted([_encode(k, ctx) + _encode(v, ctx) for k, v in value.items()])
    ctx.active.remove(id(value))
    return _sequence(b"d", parts)


def _enc_set(value: set[Any], ctx: _Context) -> bytes:
    return _sequence(b"S", sorted([_encode(item, ctx) for item in value]))


def _enc_frozenset(value: frozenset[Any], ctx: _Context) -> bytes:
    return _sequence(b"z", sorted([_encode(item, ctx) for item in value]))


_CONTAINERS: dict[type, Callable[[Any, _Context], bytes]] = {
    list: _enc_list,
    tuple: _enc_tuple,
    dict: _enc_dict,
    set: _enc_set,
    frozenset: _enc_frozenset,
}
"""Encoders of the natively handled types with children."""


def _encode(value: object, ctx: _Context) -> bytes:
    kind = type(value)
    leaf = _LEAF.get(kind)
    if leaf is not None:
        return leaf(value)
    container = _CONTAINERS.get(kind)
    if container is not None:
        return container(value, ctx)
    codec = ctx.codecs.lookup(kind)
    if codec is not None:
        return _enc_codec(codec, value, ctx)
    try:
        fallback = _FALLBACKS[kind]
    except KeyError:
        fallback = _FALLBACKS[kind] = _resolve_fallback(kind)
    if fallback is None:
        raise UnhashableValueError(type_name(kind))
    return fallback(value, ctx)


def _enc_codec(codec: Codec, value: object, ctx: _Context) -> bytes:
    ctx.enter(value)
    body = _encode(codec.reduce(value), ctx)
    ctx.active.remove(id(value))
    return b"C" + _enc_str(codec.name) + body


def _enc_enum(value: enum.Enum, ctx: _Context) -> bytes:
    return b"E" + _enc_str(type_name(type(value))) + _encode(value.value, ctx)


def _enc_fields(tag: bytes, value: object, fields: dict[str, Any], ctx: _Context) -> bytes:
    ctx.enter(value)
    body = _enc_dict(fields, ctx)
    ctx.active.remove(id(value))
    return tag + _enc_str(type_name(type(value))) + body


def _enc_pydantic(value: Any, ctx: _Context) -> bytes:
    fields = {name: getattr(value, name) for name in type(value).model_fields}
    fields.update(getattr(value, "__pydantic_extra__", None) or {})
    return _enc_fields(b"P", value, fields, ctx)


def _enc_dataclass(value: Any, ctx: _Context) -> bytes:
    fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    return _enc_fields(b"K", value, fields, ctx)


def _enc_path(value: PurePath, _ctx: _Context) -> bytes:
    return b"p" + _enc_str(type_name(type(value))) + _enc_str(value.as_posix())


def _enc_native_subclass(base: type, value: object, ctx: _Context) -> bytes:
    if getattr(value, "__dict__", None):
        raise UnhashableValueError(type_name(type(value)))
    leaf = _LEAF.get(base)
    body = leaf(value) if leaf is not None else _CONTAINERS[base](value, ctx)
    return b"B" + _enc_str(type_name(type(value))) + body


def _stateless_native_base(kind: type) -> type | None:
    """The natively encoded base of ``kind`` if its subclasses declare no ``__slots__``."""
    for position, cls in enumerate(kind.__mro__):
        if cls in _NATIVE_TYPES:
            for sub in kind.__mro__[:position]:
                slots = sub.__dict__.get("__slots__", ())
                names = (slots,) if isinstance(slots, str) else slots
                if any(n not in ("__dict__", "__weakref__") for n in names):
                    return None
            return cls
    return None


_Fallback = Callable[[Any, _Context], bytes]
_FALLBACKS: dict[type, _Fallback | None] = {}
"""Per exact type, how to encode it when no registry codec applies; None: unhashable."""


def _resolve_fallback(kind: type) -> _Fallback | None:
    codec = _builtin_codecs.lookup(kind)
    if codec is not None:
        return partial(_enc_codec, codec)
    if issubclass(kind, enum.Enum):
        return _enc_enum
    # A BaseModel instance implies pydantic is imported; this never imports it.
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and issubclass(kind, pydantic.BaseModel):
        return _enc_pydantic
    if dataclasses.is_dataclass(kind):
        return _enc_dataclass
    if issubclass(kind, PurePath):
        return _enc_path
    base = _stateless_native_base(kind)
    return None if base is None else partial(_enc_native_subclass, base)


def _encode_root(value: object, codecs: CodecRegistry | None) -> bytes:
    try:
        return _encode(value, _Context(default_codecs if codecs is None else codecs))
    except RecursionError:
        raise ValueError(
            f"cannot content-hash this {type_name(type(value))}: it is nested deeper than the "
            "recursion limit allows, or a codec's reduce returns values needing that codec again"
        ) from None


def canonical_bytes(value: object, codecs: CodecRegistry | None = None) -> bytes:
    """The versioned canonical encoding of ``value`` (see the module docstring)."""
    leaf = _LEAF.get(type(value))
    return _HEADER + (leaf(value) if leaf is not None else _encode_root(value, codecs))


def content_hash(value: object, codecs: CodecRegistry | None = None) -> ContentHash:
    """``sha256:<hex>`` of the canonical encoding of ``value``.

    Raises UnhashableValueError for a value (or part) of a type with no encoding, and ValueError
    for a value that contains itself.
    """
    leaf = _LEAF.get(type(value))
    body = leaf(value) if leaf is not None else _encode_root(value, codecs)
    return ContentHash("sha256:" + sha256(_HEADER + body).hexdigest())


def combine_hashes(parts: Iterable[str]) -> ContentHash:
    """``sha256:<hex>`` of an ordered sequence of strings, each length-prefixed."""
    digest = sha256(_COMBINE_HEADER)
    for part in parts:
        data = part.encode("utf-8", "surrogatepass")
        digest.update(_length(len(data)))
        digest.update(data)
    return ContentHash("sha256:" + digest.hexdigest())
