"""Tagged JSON: values as JSON text plus binary sections, so every type survives the trip.

A tuple stays a tuple, an int key an int key. A JSON object is a plain str-keyed dict unless it
has a ``"$"`` key, which names a tagged value; dicts with other keys (or a ``"$"`` key of their
own) are stored as a list of pairs. Bytes, and values that a ``ValueFormat`` stores, are
appended after the JSON text as length-prefixed sections that the JSON refers to by index.

Loading never imports a module named by stored data: classes are looked up among the modules
already in ``sys.modules``, and must be what the stored tag says they are.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import decimal
import enum
import json
import math
import pathlib
import struct
import sys
import uuid
import zoneinfo
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from pirn_like._errors import SerializationError
from pirn_like.core._codecs import type_name

__all__ = ["Unsupported", "ValueFormat", "decode", "encode", "json_body"]

_length = struct.Struct(">Q")

_PICKLE_FIX = (
    "SafeSerializer(pickle_key=<a secret of at least 16 bytes>), only if everyone who can write "
    "to the store is trusted: loading a pickle can run any code"
)
_NO_FORMAT = "no format accepts it"


class ValueFormat(Protocol):
    """Stores values of some kind as bytes; ``SafeSerializer`` tries formats in order.

    ``dumps`` is called only for values ``accepts`` took, and raises ``SerializationError`` for
    one it accepted but cannot store after all (the next format, or pickle, is tried then).
    ``loads`` receives exactly the bytes ``dumps`` returned.
    """

    name: str
    """Written into every payload: 1-64 characters from ``[A-Za-z0-9_.-]``, never reused."""

    def accepts(self, value: Any) -> bool:
        """Whether this format stores ``value``."""
        ...

    def dumps(self, value: Any) -> bytes:
        """The bytes of ``value``."""
        ...

    def loads(self, data: bytes) -> object:
        """The value ``dumps`` turned into ``data``."""
        ...


# --- encoding ---------------------------------------------------------------------------------


class Unsupported(Exception):
    """Raised inside one encoding when no safe format stores a (nested) value."""

    def __init__(self, kind: type, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.path: list[str] = []
        """Segments from the offending value up to the root, appended while unwinding."""

    def describe(self) -> str:
        """The error message: which value, where it sits, why, and what to do."""
        where = "value" + "".join(reversed(self.path))
        fix = (
            "Register a ValueFormat for it (SafeSerializer(formats=[...]) or .register(...)), "
            "or opt into pickle with "
            if self.reason == _NO_FORMAT
            else "Opt into pickle with "
        )
        return (
            f"cannot serialize {where} of type {type_name(self.kind)!r}: {self.reason}. "
            f"{fix}{_PICKLE_FIX}"
        )


def encode(value: object, formats: tuple[ValueFormat, ...]) -> tuple[object, list[bytes]]:
    """The JSON tree of ``value`` and the sections it refers to.

    Values that are not builtins go to the first of ``formats`` that accepts them. Raises
    ``Unsupported`` for a value nothing stores, ``RecursionError`` for one nested too deep.
    """
    encoder = _Encoder(formats)
    return encoder.node(value), encoder.blobs


_JSON_LEAVES: frozenset[type] = frozenset({str, bool, type(None)})
"""Types whose values are their own JSON, checked inline on the hot path."""
_STR_ONLY: frozenset[type] = frozenset({str})


class _Encoder:
    """The state of one encoding: blobs collected so far, containers being encoded."""

    __slots__ = ("active", "blobs", "formats")

    def __init__(self, formats: tuple[ValueFormat, ...]) -> None:
        self.formats = formats
        self.blobs: list[bytes] = []
        self.active: set[int] = set()

    def node(self, value: object) -> object:
        if type(value) in _JSON_LEAVES:
            return value
        if type(value) is int:
            # Huge ints would hit Python's int/str digit limit; hex has none.
            return value if value.bit_length() <= 64 else {"$": "int", "v": f"{value:x}"}
        if type(value) is float:
            return value if math.isfinite(value) else {"$": "float", "v": repr(value)}
        native = _ENCODERS.get(type(value))
        return native(self, value) if native is not None else self.other(value)

    def blob(self, data: bytes) -> int:
        self.blobs.append(data)
        return len(self.blobs) - 1

    def enter(self, value: object) -> None:
        key = id(value)
        if key in self.active:
            raise Unsupported(type(value), "it contains itself, and only pickle stores cycles")
        self.active.add(key)

    def leave(self, value: object) -> None:
        self.active.discard(id(value))

    def items(self, values: Iterable[object], segment: Callable[[int], str]) -> list[object]:
        out: list[object] = []
        node = self.node
        try:
            for item in values:
                out.append(item if type(item) in _JSON_LEAVES else node(item))
        except Unsupported as problem:
            problem.path.append(segment(len(out)))
            raise
        return out

    def other(self, value: object) -> object:
        kind = type(value)
        refusals: list[str] = []
        for fmt in self.formats:
            if not fmt.accepts(value):
                continue
            try:
                data = fmt.dumps(value)
            except SerializationError as refusal:
                refusals.append(f"format {fmt.name!r} refused it: {refusal}")
                continue
            if not isinstance(data, bytes):
                raise TypeError(f"format {fmt.name!r} returned {type(data).__name__}, not bytes")
            return {"$": "blob", "f": fmt.name, "i": self.blob(data)}
        structured = _structured_encoder(kind)
        if structured is None:
            raise Unsupported(kind, "; ".join(refusals) or _NO_FORMAT)
        return structured(self, value)


def _index_segment(index: int) -> str:
    return f"[{index}]"


def _element_segment(_index: int) -> str:
    return "{...}"


def _enc_list(enc: _Encoder, value: list[object]) -> object:
    enc.enter(value)
    out = enc.items(value, _index_segment)
    enc.leave(value)
    return out


def _enc_tuple(enc: _Encoder, value: tuple[object, ...]) -> object:
    # Only a mutable container can close a cycle through a tuple, and that one is tracked.
    return {"$": "tuple", "v": enc.items(value, _index_segment)}


def _enc_set(enc: _Encoder, value: set[object]) -> object:
    return {"$": "set", "v": enc.items(value, _element_segment)}


def _enc_frozenset(enc: _Encoder, value: frozenset[object]) -> object:
    return {"$": "frozenset", "v": enc.items(value, _element_segment)}


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _enc_dict(enc: _Encoder, value: dict[Any, object]) -> object:
    enc.enter(value)
    plain = "$" not in value and set(map(type, value)) <= _STR_ONLY
    out: dict[str, object] = {}
    pairs: list[object] = []
    node = enc.node
    key: Any = None
    in_key = False
    try:
        if plain:
            for key, item in value.items():
                out[key] = item if type(item) in _JSON_LEAVES else node(item)
        else:
            for key, item in value.items():
                in_key = True
                encoded_key = node(key)
                in_key = False
                pairs.append([encoded_key, node(item)])
    except Unsupported as problem:
        problem.path.append(f".keys()[{len(pairs)}]" if in_key else f"[{_short(repr(key))}]")
        raise
    enc.leave(value)
    return out if plain else {"$": "dict", "v": pairs}


def _enc_bytes(enc: _Encoder, value: bytes) -> object:
    return {"$": "bytes", "i": enc.blob(value)}


def _enc_bytearray(enc: _Encoder, value: bytearray) -> object:
    return {"$": "bytearray", "i": enc.blob(bytes(value))}


def _enc_complex(enc: _Encoder, value: complex) -> object:
    return {"$": "complex", "v": [enc.node(value.real), enc.node(value.imag)]}


def _enc_tz(owner: object, tz: _dt.tzinfo | None) -> object:
    if tz is None:
        return None
    if type(tz) is _dt.timezone:
        offset = tz.utcoffset(None)
        # An unnamed zone (timezone.utc among them) is rebuilt unnamed.
        name = tz.tzname(None)
        named = name != _dt.timezone(offset).tzname(None)
        return {"o": offset // _dt.timedelta(microseconds=1), "n": name if named else None}
    if type(tz) is zoneinfo.ZoneInfo and tz.key:
        return {"z": tz.key}
    raise Unsupported(
        type(owner),
        f"its tzinfo of type {type_name(type(tz))!r} has no safe encoding: use "
        "datetime.timezone or zoneinfo.ZoneInfo",
    )


def _enc_datetime(_enc: _Encoder, value: _dt.datetime) -> object:
    naive = value.replace(tzinfo=None, fold=0).isoformat()
    return {"$": "datetime", "v": naive, "tz": _enc_tz(value, value.tzinfo), "fold": value.fold}


def _enc_time(_enc: _Encoder, value: _dt.time) -> object:
    naive = value.replace(tzinfo=None, fold=0).isoformat()
    return {"$": "time", "v": naive, "tz": _enc_tz(value, value.tzinfo), "fold": value.fold}


def _enc_date(_enc: _Encoder, value: _dt.date) -> object:
    return {"$": "date", "v": value.isoformat()}


def _enc_timedelta(_enc: _Encoder, value: _dt.timedelta) -> object:
    return {"$": "timedelta", "v": [value.days, value.seconds, value.microseconds]}


def _enc_decimal(_enc: _Encoder, value: decimal.Decimal) -> object:
    return {"$": "decimal", "v": str(value)}


def _enc_uuid(_enc: _Encoder, value: uuid.UUID) -> object:
    return {"$": "uuid", "v": str(value)}


def _enc_path(_enc: _Encoder, value: pathlib.PurePath) -> object:
    return {"$": "path", "c": type(value).__name__, "v": str(value)}


_PATH_TYPES: dict[str, type[pathlib.PurePath]] = {
    kind.__name__: kind
    for kind in (
        pathlib.PurePosixPath,
        pathlib.PureWindowsPath,
        pathlib.PosixPath,
        pathlib.WindowsPath,
    )
}

_ENCODERS: dict[type, Callable[[_Encoder, Any], object]] = {
    list: _enc_list,
    tuple: _enc_tuple,
    dict: _enc_dict,
    set: _enc_set,
    frozenset: _enc_frozenset,
    bytes: _enc_bytes,
    bytearray: _enc_bytearray,
    complex: _enc_complex,
    _dt.datetime: _enc_datetime,
    _dt.date: _enc_date,
    _dt.time: _enc_time,
    _dt.timedelta: _enc_timedelta,
    decimal.Decimal: _enc_decimal,
    uuid.UUID: _enc_uuid,
    **{kind: _enc_path for kind in _PATH_TYPES.values()},
}
"""Encoders of the exact builtin types the tagged JSON always stores itself."""


def _find_class(module: str, qualname: str) -> object:
    """The object ``module.qualname`` names, from imported modules' namespaces only.

    Reads ``__dict__`` entries rather than attributes, so no module ``__getattr__`` runs (it
    could import). Returns None when not found.
    """
    found: object = sys.modules.get(module)
    for part in qualname.split("."):
        found = getattr(found, "__dict__", {}).get(part)
    return found


def _class_ref(value: object) -> dict[str, str]:
    kind = type(value)
    module, qualname = kind.__module__, kind.__qualname__
    if _find_class(module, qualname) is not kind:
        raise Unsupported(
            kind,
            f"loading could not find its class again as '{module}.{qualname}': define the "
            "class at module level",
        )
    return {"m": module, "q": qualname}


def _enc_fields(enc: _Encoder, value: object, tag: str, fields: dict[str, object]) -> object:
    ref = _class_ref(value)
    enc.enter(value)
    out: list[object] = []
    for name, item in fields.items():
        try:
            out.append([name, enc.node(item)])
        except Unsupported as problem:
            problem.path.append(f".{name}")
            raise
    enc.leave(value)
    return {"$": tag, **ref, "v": out}


def _enc_model(enc: _Encoder, value: Any) -> object:
    fields = {name: getattr(value, name) for name in type(value).model_fields}
    fields.update(value.__pydantic_extra__ or {})
    return _enc_fields(enc, value, "model", fields)


def _enc_dataclass(enc: _Encoder, value: Any) -> object:
    fields = {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
    return _enc_fields(enc, value, "dataclass", fields)


def _enc_namedtuple(enc: _Encoder, value: tuple[object, ...]) -> object:
    return {"$": "namedtuple", **_class_ref(value), "v": enc.items(value, _index_segment)}


def _enc_enum(enc: _Encoder, value: enum.Enum) -> object:
    ref = _class_ref(value)
    try:
        return {"$": "enum", **ref, "v": enc.node(value.value)}
    except Unsupported as problem:
        problem.path.append(".value")
        raise


def _is_model_class(kind: type) -> bool:
    # A model instance implies pydantic is imported; this never imports it.
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and issubclass(kind, pydantic.BaseModel)


def _is_namedtuple_class(kind: type) -> bool:
    return issubclass(kind, tuple) and isinstance(getattr(kind, "_fields", None), tuple)


def _structured_encoder(kind: type) -> Callable[[_Encoder, Any], object] | None:
    if issubclass(kind, enum.Enum):
        return _enc_enum
    if _is_model_class(kind):
        return _enc_model
    if dataclasses.is_dataclass(kind):
        return _enc_dataclass
    if _is_namedtuple_class(kind):
        return _enc_namedtuple
    return None


# --- decoding ---------------------------------------------------------------------------------


def decode(body: memoryview, format_named: Callable[[str], ValueFormat]) -> object:
    """The value whose JSON tree and sections ``json_body`` framed into ``body``.

    ``format_named`` returns the format a nested blob names, or raises ``SerializationError``.
    """
    sections = _sections(body)
    if not sections:
        raise SerializationError("stored 'json' bytes hold no JSON text")
    decoder = _Decoder(sections[1:], format_named)
    return json.loads(sections[0].decode("utf-8", "surrogatepass"), object_hook=decoder.hook)


class _Decoder:
    """The state of one decoding: its blobs and how to find the formats they name.

    ``hook`` is json's ``object_hook``: it sees each JSON object after its members, so a tagged
    value's parts arrive already decoded.
    """

    __slots__ = ("blobs", "format_named")

    def __init__(self, blobs: list[bytes], format_named: Callable[[str], ValueFormat]) -> None:
        self.blobs = blobs
        self.format_named = format_named

    def hook(self, data: dict[str, Any]) -> object:
        tag = data.get("$")
        if tag is None:
            return data
        decode_tag = _DECODERS.get(tag)
        if decode_tag is None:
            raise SerializationError(f"stored JSON holds an unknown tag {tag!r}")
        return decode_tag(self, data)

    def blob(self, data: dict[str, Any]) -> object:
        return self.format_named(data["f"]).loads(self.blobs[data["i"]])


def _dec_tz(data: Any) -> _dt.tzinfo | None:
    if data is None:
        return None
    if "z" in data:
        return zoneinfo.ZoneInfo(data["z"])
    offset = _dt.timedelta(microseconds=data["o"])
    return _dt.timezone(offset) if data["n"] is None else _dt.timezone(offset, data["n"])


def _dec_datetime(_dec: _Decoder, data: dict[str, Any]) -> object:
    naive = _dt.datetime.fromisoformat(data["v"])
    return naive.replace(tzinfo=_dec_tz(data["tz"]), fold=data["fold"])


def _dec_time(_dec: _Decoder, data: dict[str, Any]) -> object:
    naive = _dt.time.fromisoformat(data["v"])
    return naive.replace(tzinfo=_dec_tz(data["tz"]), fold=data["fold"])


def _dec_timedelta(_dec: _Decoder, data: dict[str, Any]) -> object:
    days, seconds, microseconds = data["v"]
    return _dt.timedelta(days=days, seconds=seconds, microseconds=microseconds)


def _dec_path(_dec: _Decoder, data: dict[str, Any]) -> object:
    kind = _PATH_TYPES.get(data["c"])
    if kind is None:
        raise SerializationError(f"stored JSON holds an unknown path class {data['c']!r}")
    return kind(data["v"])


def _dec_class(data: dict[str, Any], what: str, check: Callable[[type], bool]) -> Any:
    module, qualname = data["m"], data["q"]
    name = f"{module}.{qualname}"
    if module not in sys.modules:
        raise SerializationError(
            f"stored data holds a {what} of class {name!r}, but module {module!r} is not "
            "imported; import it before loading (loading never imports modules named by "
            "stored data)"
        )
    found = _find_class(module, qualname)
    if found is None:
        raise SerializationError(
            f"stored data holds a {what} of class {name!r}, which module {module!r} does not "
            "define; import the module that does before loading, or was it renamed?"
        )
    if not (isinstance(found, type) and check(found)):
        raise SerializationError(
            f"stored data names {name!r} as a {what} class, but it is not one; refusing to call it"
        )
    return found


def _dec_model(_dec: _Decoder, data: dict[str, Any]) -> object:
    cls = _dec_class(data, "pydantic model", _is_model_class)
    fields = dict(data["v"])
    if getattr(cls, "__pydantic_root_model__", False):
        return cls.model_validate(fields["root"])
    return cls.model_validate(fields, by_alias=False, by_name=True)


def _dec_dataclass(_dec: _Decoder, data: dict[str, Any]) -> object:
    cls = _dec_class(data, "dataclass", dataclasses.is_dataclass)
    fields = dict(data["v"])
    declared = {field.name: field for field in dataclasses.fields(cls)}
    unknown = sorted(set(fields) - set(declared))
    if unknown:
        raise SerializationError(
            f"stored dataclass {type_name(cls)!r} has fields {unknown} the class no longer declares"
        )
    value = cls(**{name: item for name, item in fields.items() if declared[name].init})
    for name, item in fields.items():
        if not declared[name].init:
            # As copy and pickle do: restore state that __init__ does not take.
            object.__setattr__(value, name, item)
    return value


def _dec_namedtuple(_dec: _Decoder, data: dict[str, Any]) -> object:
    cls = _dec_class(data, "namedtuple", _is_namedtuple_class)
    return cls(*data["v"])


def _dec_enum(_dec: _Decoder, data: dict[str, Any]) -> object:
    cls = _dec_class(data, "enum member", lambda kind: issubclass(kind, enum.Enum))
    return cls(data["v"])


_DECODERS: dict[str, Callable[[_Decoder, dict[str, Any]], object]] = {
    "int": lambda _dec, data: int(data["v"], 16),
    "float": lambda _dec, data: float(data["v"]),
    "tuple": lambda _dec, data: tuple(data["v"]),
    "set": lambda _dec, data: set(data["v"]),
    "frozenset": lambda _dec, data: frozenset(data["v"]),
    "dict": lambda _dec, data: dict(data["v"]),
    "bytes": lambda dec, data: dec.blobs[data["i"]],
    "bytearray": lambda dec, data: bytearray(dec.blobs[data["i"]]),
    "complex": lambda _dec, data: complex(*data["v"]),
    "datetime": _dec_datetime,
    "date": lambda _dec, data: _dt.date.fromisoformat(data["v"]),
    "time": _dec_time,
    "timedelta": _dec_timedelta,
    "decimal": lambda _dec, data: decimal.Decimal(data["v"]),
    "uuid": lambda _dec, data: uuid.UUID(data["v"]),
    "path": _dec_path,
    "enum": _dec_enum,
    "model": _dec_model,
    "dataclass": _dec_dataclass,
    "namedtuple": _dec_namedtuple,
    "blob": lambda dec, data: dec.blob(data),
}


# --- framing ----------------------------------------------------------------------------------


def json_body(tree: object, blobs: list[bytes]) -> bytes:
    """The JSON text of ``tree`` and then ``blobs``, each prefixed by its length."""
    text = json.dumps(
        tree, ensure_ascii=False, allow_nan=False, check_circular=False, separators=(",", ":")
    ).encode("utf-8", "surrogatepass")
    parts = [_length.pack(len(text)), text]
    for blob in blobs:
        parts += (_length.pack(len(blob)), blob)
    return b"".join(parts)


def _sections(body: memoryview) -> list[bytes]:
    """The length-prefixed sections a body is made of."""
    out: list[bytes] = []
    offset = 0
    while offset < len(body):
        if offset + _length.size > len(body):
            raise SerializationError("stored bytes are truncated inside a section length")
        (size,) = _length.unpack_from(body, offset)
        offset += _length.size
        if offset + size > len(body):
            raise SerializationError("stored bytes are truncated inside a section")
        out.append(bytes(body[offset : offset + size]))
        offset += size
    return out
