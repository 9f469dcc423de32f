"""Turning values into self-describing bytes for persistent backends, and back.

Stored bytes are ``MAGIC``, a version byte, a one-byte length and the ASCII name of the format
that wrote the rest:

- ``json``: builtins, enums, pathlib paths, pydantic models, dataclasses and namedtuples as
  tagged JSON, so every type survives (a tuple stays a tuple, an int key an int key). A JSON
  object is a plain str-keyed dict unless it has a ``"$"`` key, which names a tagged value;
  dicts with other keys (or a ``"$"`` key of their own) are stored as a list of pairs. Bytes and
  values of other formats nested inside are appended after the JSON text as length-prefixed
  blobs that the JSON refers to by index.
- ``npy``, ``arrow``, ``pandas``: numpy arrays and scalars, pyarrow tables, pandas frames and
  series, via numpy's and Arrow's own formats, never pickle.
- user formats (``ValueFormat``), consulted before the built-in ones for any value that is not
  a builtin.
- ``pickle``: cloudpickle, only with a ``pickle_key``, for values no other format takes; the
  payload is signed with HMAC-SHA256 and never unpickled before its signature checks out.

Loading never imports a module named by stored data: classes are looked up among the modules
already in ``sys.modules``, and must be what the stored tag says they are.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import decimal
import enum
import hmac
import io
import json
import math
import pathlib
import pickle
import re
import struct
import sys
import uuid
import zoneinfo
from collections.abc import Callable, Iterable
from hashlib import sha256
from typing import Any, Protocol

from pirn_like._errors import MissingExtraError, SerializationError, UntrustedPayloadError
from pirn_like.core._codecs import type_name

__all__ = ["SafeSerializer", "ValueFormat"]

MAGIC = b"\x93PLV"
"""The first bytes of every payload: 0x93 never starts UTF-8 text."""

FORMAT_VERSION = 1
"""Bumped when the payload layout or the tagged JSON changes incompatibly."""

_MIN_KEY_BYTES = 16
_MAC_BYTES = sha256().digest_size
_length = struct.Struct(">Q")
_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_JSON, _PICKLE = "json", "pickle"

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


def _header(name: str) -> bytes:
    raw = name.encode("ascii")
    return MAGIC + bytes([FORMAT_VERSION, len(raw)]) + raw


def _root_module(kind: type) -> str:
    return kind.__module__.partition(".")[0]


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- encoding to tagged JSON ------------------------------------------------------------------


class _Unsupported(Exception):
    """Raised inside one dumps when no safe format stores a (nested) value."""

    def __init__(self, kind: type, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.path: list[str] = []
        """Segments from the offending value up to the root, appended while unwinding."""

    def describe(self) -> str:
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


_JSON_LEAVES: frozenset[type] = frozenset({str, bool, type(None)})
"""Types whose values are their own JSON, checked inline on the hot path."""
_STR_ONLY: frozenset[type] = frozenset({str})


class _Encoder:
    """The state of one ``dumps``: blobs collected so far, containers being encoded."""

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
            raise _Unsupported(type(value), "it contains itself, and only pickle stores cycles")
        self.active.add(key)

    def leave(self, value: object) -> None:
        self.active.discard(id(value))

    def items(self, values: Iterable[object], segment: Callable[[int], str]) -> list[object]:
        out: list[object] = []
        node = self.node
        try:
            for item in values:
                out.append(item if type(item) in _JSON_LEAVES else node(item))
        except _Unsupported as problem:
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
            raise _Unsupported(kind, "; ".join(refusals) or _NO_FORMAT)
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
    except _Unsupported as problem:
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
    raise _Unsupported(
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
        raise _Unsupported(
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
        except _Unsupported as problem:
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
    except _Unsupported as problem:
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


# --- decoding tagged JSON ---------------------------------------------------------------------


class _Decoder:
    """The state of one ``loads`` of a json payload: its blobs and the known formats.

    ``hook`` is json's ``object_hook``: it sees each JSON object after its members, so a tagged
    value's parts arrive already decoded.
    """

    __slots__ = ("blobs", "formats")

    def __init__(self, blobs: list[bytes], formats: dict[str, ValueFormat]) -> None:
        self.blobs = blobs
        self.formats = formats

    def hook(self, data: dict[str, Any]) -> object:
        tag = data.get("$")
        if tag is None:
            return data
        decode = _DECODERS.get(tag)
        if decode is None:
            raise SerializationError(f"stored JSON holds an unknown tag {tag!r}")
        return decode(self, data)

    def blob(self, data: dict[str, Any]) -> object:
        name = data["f"]
        fmt = self.formats.get(name)
        if fmt is None:
            raise SerializationError(_unknown_format(name, self.formats))
        return fmt.loads(self.blobs[data["i"]])


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


def _json_body(tree: object, blobs: list[bytes]) -> bytes:
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


def _unknown_format(name: str, formats: dict[str, ValueFormat]) -> str:
    known = sorted([_JSON, _PICKLE, *formats])
    return (
        f"stored bytes use format {name!r}, which this SafeSerializer does not have; register "
        f"the ValueFormat named {name!r} (known formats: {known})"
    )


# --- numpy, pyarrow and pandas ----------------------------------------------------------------
# Imported on first use only: importing this module must stay light.


def _numpy() -> Any:
    try:
        import numpy
    except ImportError as error:
        raise MissingExtraError("storing numpy values", "numpy", "numpy") from error
    return numpy


def _pyarrow() -> Any:
    try:
        import pyarrow  # pyright: ignore[reportMissingImports]
    except ImportError as error:
        raise MissingExtraError("storing pandas and pyarrow values", "pandas", "pyarrow") from error
    return pyarrow


def _pandas() -> Any:
    try:
        import pandas  # pyright: ignore[reportMissingImports]
    except ImportError as error:
        raise MissingExtraError("storing pandas values", "pandas", "pandas") from error
    return pandas


class _NpyFormat:
    """numpy arrays and scalars in the ``.npy`` format, without pickle."""

    name = "npy"

    def accepts(self, value: Any) -> bool:
        kind = type(value)
        if _root_module(kind) != "numpy":
            return False
        np = _numpy()
        return kind is np.ndarray or isinstance(value, np.generic)

    def dumps(self, value: Any) -> bytes:
        np = _numpy()
        array = np.asarray(value)
        if array.dtype.hasobject:
            raise SerializationError(
                f"numpy arrays of dtype {array.dtype} hold Python objects, which only pickle stores"
            )
        buffer = io.BytesIO()
        buffer.write(b"a" if type(value) is np.ndarray else b"s")
        np.save(buffer, array, allow_pickle=False)
        return buffer.getvalue()

    def loads(self, data: bytes) -> object:
        array = _numpy().load(io.BytesIO(data[1:]), allow_pickle=False)
        return array if data[:1] == b"a" else array[()]


def _arrow_stream(table: Any) -> bytes:
    pa = _pyarrow()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write(table)
    return sink.getvalue().to_pybytes()


def _arrow_reader(data: bytes) -> Any:
    pa = _pyarrow()
    return pa.ipc.open_stream(pa.py_buffer(data))


class _ArrowFormat:
    """pyarrow Tables and RecordBatches as an Arrow IPC stream."""

    name = "arrow"

    def accepts(self, value: Any) -> bool:
        kind = type(value)
        if _root_module(kind) != "pyarrow":
            return False
        pa = _pyarrow()
        return kind is pa.Table or kind is pa.RecordBatch

    def dumps(self, value: Any) -> bytes:
        kind = b"t" if type(value) is _pyarrow().Table else b"b"
        return kind + _arrow_stream(value)

    def loads(self, data: bytes) -> object:
        reader = _arrow_reader(data[1:])
        return reader.read_all() if data[:1] == b"t" else reader.read_next_batch()


_PANDAS_FIXES = b"pirn_like"
"""Schema metadata key: what pyarrow's pandas conversion does not restore by itself."""


def _frame_to_table(frame: Any) -> Any:
    """An Arrow table of ``frame`` with positional column names (labels are stored apart)."""
    pa, pd = _pyarrow(), _pandas()
    is_object = pd.api.types.is_object_dtype
    index = frame.index
    levels = [index.get_level_values(i) for i in range(index.nlevels)]
    fixes = {
        # pandas 3 reads Arrow strings back as str dtype, even for object columns.
        "object": [i for i, dtype in enumerate(frame.dtypes) if is_object(dtype)],
        "index_object": [i for i, level in enumerate(levels) if is_object(level.dtype)],
        "freq": index.freqstr
        if isinstance(index, pd.DatetimeIndex | pd.TimedeltaIndex) and index.freq is not None
        else None,
    }
    positional = frame.set_axis([str(i) for i in range(frame.shape[1])], axis=1)
    try:
        table = pa.Table.from_pandas(positional, preserve_index=None)
    except (pa.ArrowException, ValueError, TypeError) as error:
        raise SerializationError(f"pyarrow cannot convert it: {error}") from error
    metadata = {**(table.schema.metadata or {}), _PANDAS_FIXES: json.dumps(fixes).encode()}
    # Not replace_schema_metadata: it drops the row count of a table without columns.
    return pa.Table.from_batches(table.to_batches(), schema=table.schema.with_metadata(metadata))


def _table_to_frame(table: Any) -> Any:
    pd = _pandas()
    frame = table.to_pandas()
    fixes = json.loads(table.schema.metadata[_PANDAS_FIXES])
    for i in fixes["object"]:
        frame.isetitem(i, frame.iloc[:, i].astype(object))
    index = frame.index
    if fixes["index_object"]:
        if isinstance(index, pd.MultiIndex):
            levels = [index.levels[i].astype(object) for i in fixes["index_object"]]
            index = index.set_levels(levels, level=fixes["index_object"])
        else:
            index = index.astype(object)
    if fixes["freq"] is not None:
        index = type(index)(index, freq=fixes["freq"])
    frame.index = index
    return frame


class _PandasFormat:
    """pandas DataFrames and Series through pyarrow: values, then column labels."""

    name = "pandas"

    def accepts(self, value: Any) -> bool:
        kind = type(value)
        if _root_module(kind) != "pandas":
            return False
        pd = _pandas()
        return kind is pd.DataFrame or kind is pd.Series

    def dumps(self, value: Any) -> bytes:
        pd = _pandas()
        is_series = type(value) is pd.Series
        frame = value.to_frame(name=value.name) if is_series else value
        values = _arrow_stream(_frame_to_table(frame))
        labels = _arrow_stream(_frame_to_table(pd.DataFrame(index=frame.columns)))
        return (b"s" if is_series else b"f") + _length.pack(len(values)) + values + labels

    def loads(self, data: bytes) -> object:
        (size,) = _length.unpack_from(data, 1)
        start = 1 + _length.size
        frame = _table_to_frame(_arrow_reader(data[start : start + size]).read_all())
        frame.columns = _table_to_frame(_arrow_reader(data[start + size :]).read_all()).index
        return frame.iloc[:, 0] if data[:1] == b"s" else frame


_BUILTIN_FORMATS: tuple[ValueFormat, ...] = (_NpyFormat(), _ArrowFormat(), _PandasFormat())


# --- the serializer ---------------------------------------------------------------------------


def _cloudpickle() -> Any:
    try:
        import cloudpickle  # pyright: ignore[reportMissingImports]
    except ImportError as error:
        raise MissingExtraError(
            "SafeSerializer(pickle_key=...)", "pickle", "cloudpickle"
        ) from error
    return cloudpickle


class SafeSerializer:
    """The default ``Serializer``: values as self-describing bytes, with no pickle by default.

    Builtins, enums, paths, pydantic models, dataclasses and namedtuples are stored as tagged
    JSON; numpy, pyarrow and pandas values in their own formats; other values by the
    ``formats`` given here or with :meth:`register`, which are consulted first. A value that
    no format stores raises ``SerializationError`` naming it and where it sits.

    ``pickle_key`` opts into cloudpickle for such values, signed with HMAC-SHA256 under the
    key: only a serializer holding the same key loads them, and it checks the signature
    before unpickling. Loading a pickle runs code, so use it only if everyone who can write
    to the store is trusted, and keep the key secret.
    """

    __slots__ = ("_by_name", "_formats", "_headers", "_pickle_key")

    def __init__(
        self, formats: Iterable[ValueFormat] = (), *, pickle_key: bytes | None = None
    ) -> None:
        if pickle_key is not None:
            if not isinstance(pickle_key, bytes | bytearray):
                raise TypeError(f"pickle_key must be bytes, got {type(pickle_key).__name__}")
            if len(pickle_key) < _MIN_KEY_BYTES:
                raise ValueError(
                    f"pickle_key must be a secret of at least {_MIN_KEY_BYTES} bytes, got "
                    f"{len(pickle_key)}"
                )
            pickle_key = bytes(pickle_key)
        self._pickle_key = pickle_key
        self._formats: tuple[ValueFormat, ...] = _BUILTIN_FORMATS
        self._by_name: dict[str, ValueFormat] = {fmt.name: fmt for fmt in _BUILTIN_FORMATS}
        self._headers: dict[str, bytes] = {
            name: _header(name) for name in [_JSON, _PICKLE, *self._by_name]
        }
        for fmt in formats:
            self.register(fmt)

    def register(self, fmt: ValueFormat) -> None:
        """Consult ``fmt`` after the formats registered before it, and before built-in ones."""
        name = getattr(fmt, "name", None)
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(
                f"a ValueFormat's name must be 1-64 characters from [A-Za-z0-9_.-], got {name!r}"
            )
        if name in self._headers:
            raise ValueError(f"format name {name!r} is already taken; choose another")
        missing = [m for m in ("accepts", "dumps", "loads") if not callable(getattr(fmt, m, None))]
        if missing:
            raise TypeError(f"format {name!r} lacks the ValueFormat methods {missing}")
        user = len(self._formats) - len(_BUILTIN_FORMATS)
        self._formats = (*self._formats[:user], fmt, *_BUILTIN_FORMATS)
        self._by_name[name] = fmt
        self._headers[name] = _header(name)

    def dumps(self, value: object) -> bytes:
        """The bytes of ``value``; SerializationError if no format (nor opted-in pickle) can."""
        encoder = _Encoder(self._formats)
        try:
            tree = encoder.node(value)
        except _Unsupported as problem:
            if self._pickle_key is None:
                raise SerializationError(problem.describe()) from None
            return self._dumps_pickle(value, self._pickle_key)
        except RecursionError:
            raise SerializationError(
                f"cannot serialize this {type_name(type(value))}: it is nested deeper than the "
                "recursion limit allows"
            ) from None
        if type(tree) is dict and tree.get("$") == "blob":
            # The value itself belongs to a format: store its bytes without a JSON wrapper.
            return self._headers[tree["f"]] + encoder.blobs[0]
        return self._headers[_JSON] + _json_body(tree, encoder.blobs)

    def loads(self, data: bytes) -> object:
        """The value ``dumps`` turned into ``data``.

        Raises SerializationError for bytes not written by a SafeSerializer, by a newer
        payload version, by an unknown format, or naming a class that is not imported;
        UntrustedPayloadError for a pickle this serializer may not load.
        """
        view = memoryview(data)
        name, body = self._read_header(view)
        try:
            if name == _JSON:
                return self._loads_json(body)
            if name == _PICKLE:
                return self._loads_pickle(view[: len(view) - len(body)], body)
            fmt = self._by_name.get(name)
            if fmt is None:
                raise SerializationError(_unknown_format(name, self._by_name))
            return fmt.loads(bytes(body))
        except SerializationError:
            raise
        except (LookupError, TypeError, ValueError, struct.error) as error:
            raise SerializationError(
                f"cannot read stored bytes of format {name!r}: {type(error).__name__}: {error}"
            ) from error

    def _read_header(self, view: memoryview) -> tuple[str, memoryview]:
        magic = bytes(view[: len(MAGIC)])
        if magic != MAGIC:
            raise SerializationError(
                f"stored bytes do not start with SafeSerializer's magic {MAGIC!r}: found "
                f"{bytes(view[:8])!r}; they were not written by pirn_like's SafeSerializer"
            )
        start = len(MAGIC) + 2
        if len(view) < start:
            raise SerializationError("stored bytes are truncated inside their header")
        version, size = view[len(MAGIC)], view[len(MAGIC) + 1]
        if version != FORMAT_VERSION:
            raise SerializationError(
                f"stored bytes use payload version {version}, but this pirn_like reads version "
                f"{FORMAT_VERSION}; they were written by another pirn_like version"
            )
        raw = bytes(view[start : start + size])
        if len(raw) != size or not _NAME.fullmatch(raw.decode("ascii", "replace")):
            raise SerializationError(f"stored bytes have a corrupt format name {raw!r}")
        return raw.decode("ascii"), view[start + size :]

    def _loads_json(self, body: memoryview) -> object:
        sections = _sections(body)
        if not sections:
            raise SerializationError("stored 'json' bytes hold no JSON text")
        decoder = _Decoder(sections[1:], self._by_name)
        return json.loads(sections[0].decode("utf-8", "surrogatepass"), object_hook=decoder.hook)

    def _dumps_pickle(self, value: object, key: bytes) -> bytes:
        header = self._headers[_PICKLE]
        try:
            body = _cloudpickle().dumps(value)
        except (pickle.PicklingError, TypeError, AttributeError) as error:
            raise SerializationError(
                f"cannot pickle this {type_name(type(value))}: {error}"
            ) from error
        return header + hmac.new(key, header + body, sha256).digest() + body

    def _loads_pickle(self, header: memoryview, body: memoryview) -> object:
        if self._pickle_key is None:
            raise UntrustedPayloadError(
                "stored bytes hold a pickle, and pickled data is never loaded unless the "
                "serializer has the key it was signed with: SafeSerializer(pickle_key=...), "
                "for stores only trusted parties write to"
            )
        if len(body) <= _MAC_BYTES:
            raise UntrustedPayloadError(
                "stored pickle carries no signature (it is shorter than an HMAC-SHA256 and a "
                "pickle); refusing to unpickle it"
            )
        mac, pickled = bytes(body[:_MAC_BYTES]), bytes(body[_MAC_BYTES:])
        expected = hmac.new(self._pickle_key, bytes(header) + pickled, sha256).digest()
        if not hmac.compare_digest(mac, expected):
            raise UntrustedPayloadError(
                "stored pickle's signature does not match: it was tampered with or signed with "
                "another key; refusing to unpickle it"
            )
        return pickle.loads(pickled)
