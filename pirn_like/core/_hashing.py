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
from operator import itemgetter
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


_BIG = 1 << 16
"""Parts at least this long go to sha256 as they are, never copied into a joined buffer."""
_LAYOUTS = 256
"""Key tuples of string-keyed dicts remembered per encoding."""


class _Context:
    __slots__ = ("active", "big", "codecs", "layouts", "out")

    def __init__(self, codecs: CodecRegistry) -> None:
        self.codecs = codecs
        self.active: set[int] = set()
        """ids of the containers being encoded, to catch cycles."""
        self.out: list[bytes | bytearray | memoryview] = []
        """The encoding so far, in parts: containers append their children's in place."""
        self.big: list[int] = []
        """Positions in ``out`` of parts of at least ``_BIG`` bytes."""
        self.layouts: dict[tuple[str, ...], list[tuple[bytes, str]]] = {}
        """Per key tuple of dicts with string keys: each key's bytes, in encoding order
        (a list of records repeats one key tuple; its keys are encoded once)."""

    def enter(self, value: object) -> None:
        key = id(value)
        if key in self.active:
            raise ValueError(
                f"cannot content-hash a cyclic value: a {type_name(type(value))} contains "
                "itself (or a codec's reduce returned its own input)"
            )
        self.active.add(key)

    def put_large(self, head: bytes, data: bytes | bytearray | memoryview) -> None:
        """Append ``head`` then ``data``, keeping a large ``data`` out of later copies."""
        out = self.out
        out.append(head)
        if len(data) >= _BIG:
            self.big.append(len(out))
        out.append(data)


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


_LEAF: dict[type, Callable[[Any], bytes]] = {
    type(None): lambda _: b"N",
    bool: lambda v: b"T" if v else b"F",
    int: _enc_int,
    float: lambda v: b"f" + _float_bits(v),
    complex: lambda v: b"c" + _float_bits(v.real) + _float_bits(v.imag),
    str: _enc_str,
    _dt.datetime: lambda v: _text(b"M", v.isoformat()),
    _dt.date: lambda v: _text(b"a", v.isoformat()),
    _dt.time: lambda v: _text(b"h", v.isoformat()),
    _dt.timedelta: lambda v: b"r" + _timedelta(v.days, v.seconds, v.microseconds),
    decimal.Decimal: lambda v: _text(b"m", str(v)),
    uuid.UUID: lambda v: b"u" + v.bytes,
}
"""Encoders of the natively handled types without children (small: returned whole)."""


def _put_bytes(value: bytes, ctx: _Context) -> None:
    ctx.put_large(b"y" + _length(len(value)), value)


def _put_bytearray(value: bytearray, ctx: _Context) -> None:
    ctx.put_large(b"Y" + _length(len(value)), value)


def _put_encoded(value: _Encoded, ctx: _Context) -> None:
    ctx.put_large(value.head, value.body)


def _put_items(items: Iterable[Any], ctx: _Context) -> None:
    out = ctx.out
    for item in items:
        kind = type(item)
        leaf = _LEAF.get(kind)  # inlined for leaves: most items are
        if leaf is not None:
            out.append(leaf(item))
        elif kind is dict:
            _put_record(item, ctx)
        else:
            _put(item, ctx)


def _put_list(value: list[Any], ctx: _Context) -> None:
    ctx.enter(value)
    ctx.out.append(b"l" + _length(len(value)))
    _put_items(value, ctx)
    ctx.active.remove(id(value))


def _put_tuple(value: tuple[Any, ...], ctx: _Context) -> None:
    # Only a mutable container can close a cycle through a tuple, and that one is tracked.
    ctx.out.append(b"t" + _length(len(value)))
    _put_items(value, ctx)


def _put_dict(value: dict[Any, Any], ctx: _Context) -> None:
    ctx.enter(value)
    # Entries in the order of their keys' bytes: keys encode prefix-free, so while they
    # differ this is the order of the entries' bytes, and values need not be encoded apart.
    entries: list[tuple[bytes, Any]] = []
    str_keys = True
    for key, item in value.items():
        if type(key) is str:
            entries.append((_enc_str(key), item))
        else:
            str_keys = False
            entries.append((_encode(key, ctx), item))
    out = ctx.out
    out.append(b"d" + _length(len(entries)))
    if str_keys:
        entries.sort()  # distinct strings encode apart: tuples compare by their key alone
    else:
        entries.sort(key=_key_bytes)
        if len({key for key, _ in entries}) < len(entries):
            # Distinct keys that encode alike (NaNs): the values' bytes decide their order.
            out.extend(sorted([key + _encode(item, ctx) for key, item in entries]))
            ctx.active.remove(id(value))
            return
    for key, item in entries:
        out.append(key)
        leaf = _LEAF.get(type(item))
        if leaf is not None:
            out.append(leaf(item))
        else:
            _put(item, ctx)
    ctx.active.remove(id(value))


def _put_record(value: dict[Any, Any], ctx: _Context) -> None:
    """A dict inside a list or tuple: records repeat their keys, so a dict whose keys are
    all ``str`` takes their bytes and order from the first dict with the same keys."""
    keys = tuple(value)
    layout = ctx.layouts.get(keys)
    # Equal tuples may hold str subclasses (a StrEnum member equals its value): exact only.
    if layout is None or not all(type(key) is str for key in keys):
        layout = _string_key_layout(keys, ctx)
        if layout is None:
            _put_dict(value, ctx)
            return
    ctx.enter(value)
    out = ctx.out
    out.append(b"d" + _length(len(keys)))
    for encoded, key in layout:
        out.append(encoded)
        item = value[key]
        leaf = _LEAF.get(type(item))
        if leaf is not None:
            out.append(leaf(item))
        else:
            _put(item, ctx)
    ctx.active.remove(id(value))


def _string_key_layout(keys: tuple[Any, ...], ctx: _Context) -> list[tuple[bytes, str]] | None:
    """The keys' bytes in encoding order if every key is a ``str`` (remembered), else None.

    Keys encode prefix-free, so while they differ the order of their bytes is the order of
    the entries' bytes, and values need not be encoded apart; distinct strings always differ.
    """
    if not all(type(key) is str for key in keys):
        return None
    layout = sorted([(_enc_str(key), key) for key in keys])
    if len(ctx.layouts) < _LAYOUTS:
        ctx.layouts[keys] = layout
    return layout


_key_bytes = itemgetter(0)


def _put_set(value: set[Any], ctx: _Context) -> None:
    _put_sorted(b"S", value, ctx)


def _put_frozenset(value: frozenset[Any], ctx: _Context) -> None:
    _put_sorted(b"z", value, ctx)


def _put_sorted(tag: bytes, items: set[Any] | frozenset[Any], ctx: _Context) -> None:
    parts = sorted([_encode(item, ctx) for item in items])
    ctx.out.append(tag + _length(len(parts)))
    ctx.out.extend(parts)


_CONTAINERS: dict[type, Callable[[Any, _Context], None]] = {
    bytes: _put_bytes,
    bytearray: _put_bytearray,
    _Encoded: _put_encoded,
    list: _put_list,
    tuple: _put_tuple,
    dict: _put_dict,
    set: _put_set,
    frozenset: _put_frozenset,
}
"""Writers of the natively handled types with children or of any size."""


def _put(value: object, ctx: _Context) -> None:
    """Append the encoding of ``value`` to ``ctx.out``."""
    kind = type(value)
    leaf = _LEAF.get(kind)
    if leaf is not None:
        ctx.out.append(leaf(value))
        return
    container = _CONTAINERS.get(kind)
    if container is not None:
        container(value, ctx)
        return
    codec = ctx.codecs.lookup(kind)
    if codec is not None:
        _put_codec(codec, value, ctx)
        return
    try:
        fallback = _FALLBACKS[kind]
    except KeyError:
        fallback = _FALLBACKS[kind] = _resolve_fallback(kind)
    if fallback is None:
        raise UnhashableValueError(type_name(kind))
    fallback(value, ctx)


def _encode(value: object, ctx: _Context) -> bytes:
    """The encoding of ``value`` on its own (to sort by): written apart, then joined."""
    kind = type(value)
    leaf = _LEAF.get(kind)
    if leaf is not None:
        return leaf(value)
    outer, outer_big = ctx.out, ctx.big
    ctx.out, ctx.big = [], []
    try:
        _put(value, ctx)
        return b"".join(ctx.out)
    finally:
        ctx.out, ctx.big = outer, outer_big


def _put_codec(codec: Codec, value: object, ctx: _Context) -> None:
    ctx.enter(value)
    reduced = codec.reduce(value)
    ctx.out.append(b"C" + _enc_str(codec.name))
    _put(reduced, ctx)
    ctx.active.remove(id(value))


def _put_enum(value: enum.Enum, ctx: _Context) -> None:
    ctx.out.append(b"E" + _enc_str(type_name(type(value))))
    _put(value.value, ctx)


def _put_fields(tag: bytes, value: object, fields: dict[str, Any], ctx: _Context) -> None:
    ctx.enter(value)
    ctx.out.append(tag + _enc_str(type_name(type(value))))
    _put_dict(fields, ctx)
    ctx.active.remove(id(value))


def _put_pydantic(value: Any, ctx: _Context) -> None:
    fields = {name: getattr(value, name) for name in type(value).model_fields}
    fields.update(getattr(value, "__pydantic_extra__", None) or {})
    _put_fields(b"P", value, fields, ctx)


def _put_dataclass(value: Any, ctx: _Context) -> None:
    fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    _put_fields(b"K", value, fields, ctx)


def _put_path(value: PurePath, ctx: _Context) -> None:
    ctx.out.append(b"p" + _enc_str(type_name(type(value))) + _enc_str(value.as_posix()))


def _put_native_subclass(base: type, value: object, ctx: _Context) -> None:
    if getattr(value, "__dict__", None):
        raise UnhashableValueError(type_name(type(value)))
    ctx.out.append(b"B" + _enc_str(type_name(type(value))))
    leaf = _LEAF.get(base)
    if leaf is not None:
        ctx.out.append(leaf(value))
    else:
        _CONTAINERS[base](value, ctx)


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


_Fallback = Callable[[Any, _Context], None]
_FALLBACKS: dict[type, _Fallback | None] = {}
"""Per exact type, how to encode it when no registry codec applies; None: unhashable."""


def _resolve_fallback(kind: type) -> _Fallback | None:
    codec = _builtin_codecs.lookup(kind)
    if codec is not None:
        return partial(_put_codec, codec)
    if issubclass(kind, enum.Enum):
        return _put_enum
    # A BaseModel instance implies pydantic is imported; this never imports it.
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and issubclass(kind, pydantic.BaseModel):
        return _put_pydantic
    if dataclasses.is_dataclass(kind):
        return _put_dataclass
    if issubclass(kind, PurePath):
        return _put_path
    base = _stateless_native_base(kind)
    return None if base is None else partial(_put_native_subclass, base)


def _encoded_parts(value: object, codecs: CodecRegistry | None) -> _Context:
    ctx = _Context(default_codecs if codecs is None else codecs)
    try:
        _put(value, ctx)
    except RecursionError:
        raise ValueError(
            f"cannot content-hash this {type_name(type(value))}: it is nested deeper than the "
            "recursion limit allows, or a codec's reduce returns values needing that codec again"
        ) from None
    return ctx


def canonical_bytes(value: object, codecs: CodecRegistry | None = None) -> bytes:
    """The versioned canonical encoding of ``value`` (see the module docstring)."""
    leaf = _LEAF.get(type(value))
    if leaf is not None:
        return _HEADER + leaf(value)
    return b"".join([_HEADER, *_encoded_parts(value, codecs).out])


def content_hash(value: object, codecs: CodecRegistry | None = None) -> ContentHash:
    """``sha256:<hex>`` of the canonical encoding of ``value``.

    Raises UnhashableValueError for a value (or part) of a type with no encoding, and ValueError
    for a value that contains itself.
    """
    leaf = _LEAF.get(type(value))
    if leaf is not None:
        return ContentHash("sha256:" + sha256(_HEADER + leaf(value)).hexdigest())
    ctx = _encoded_parts(value, codecs)
    out = ctx.out
    digest = sha256(_HEADER)
    done = 0
    # Small parts joined, large ones hashed where they lie: one pass, no large copies.
    for at in ctx.big:
        if at > done:
            digest.update(b"".join(out[done:at]))
        digest.update(out[at])
        done = at + 1
    digest.update(b"".join(out[done:]) if done else b"".join(out))
    return ContentHash("sha256:" + digest.hexdigest())


def combine_hashes(parts: Iterable[str]) -> ContentHash:
    """``sha256:<hex>`` of an ordered sequence of strings, each length-prefixed."""
    digest = sha256(_COMBINE_HEADER)
    for part in parts:
        data = part.encode("utf-8", "surrogatepass")
        digest.update(_length(len(data)))
        digest.update(data)
    return ContentHash("sha256:" + digest.hexdigest())
