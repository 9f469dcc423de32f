"""Turning values into self-describing bytes for persistent backends, and back.

Stored bytes are ``MAGIC``, a version byte, a one-byte length and the ASCII name of the format
that wrote the rest:

- ``json``: builtins, enums, pathlib paths, pydantic models, dataclasses and namedtuples as
  tagged JSON (``_tagged_json``), so every type survives; bytes and values of other formats
  nested inside are appended as length-prefixed sections.
- ``npy``, ``arrow``, ``pandas``: numpy arrays and scalars, pyarrow tables, pandas frames and
  series, via numpy's and Arrow's own formats (``_table_formats``), never pickle.
- user formats (``ValueFormat``), consulted before the built-in ones for any value that is not
  a builtin.
- ``pickle``: cloudpickle, only with a ``pickle_key``, for values no other format takes; the
  payload is signed with HMAC-SHA256 and never unpickled before its signature checks out.

This module holds that envelope, the registry of formats and the signed-pickle path.
"""

from __future__ import annotations

import hmac
import pickle
import re
import struct
from collections.abc import Iterable
from hashlib import sha256
from typing import Any

from pirn_like._errors import MissingExtraError, SerializationError, UntrustedPayloadError
from pirn_like.core._codecs import type_name
from pirn_like.core._table_formats import ArrowFormat, NpyFormat, PandasFormat
from pirn_like.core._tagged_json import Unsupported, ValueFormat, decode, encode, json_body

__all__ = ["SafeSerializer", "ValueFormat"]

MAGIC = b"\x93PLV"
"""The first bytes of every payload: 0x93 never starts UTF-8 text."""

FORMAT_VERSION = 1
"""Bumped when the payload layout or the tagged JSON changes incompatibly."""

_MIN_KEY_BYTES = 16
_MAC_BYTES = sha256().digest_size
_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_JSON, _PICKLE = "json", "pickle"

_BUILTIN_FORMATS: tuple[ValueFormat, ...] = (NpyFormat(), ArrowFormat(), PandasFormat())


def _header(name: str) -> bytes:
    raw = name.encode("ascii")
    return MAGIC + bytes([FORMAT_VERSION, len(raw)]) + raw


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
        try:
            tree, blobs = encode(value, self._formats)
        except Unsupported as problem:
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
            return self._headers[tree["f"]] + blobs[0]
        return self._headers[_JSON] + json_body(tree, blobs)

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
                return decode(body, self._format_named)
            if name == _PICKLE:
                return self._loads_pickle(view[: len(view) - len(body)], body)
            return self._format_named(name).loads(bytes(body))
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

    def _format_named(self, name: str) -> ValueFormat:
        fmt = self._by_name.get(name)
        if fmt is None:
            known = sorted([_JSON, _PICKLE, *self._by_name])
            raise SerializationError(
                f"stored bytes use format {name!r}, which this SafeSerializer does not have; "
                f"register the ValueFormat named {name!r} (known formats: {known})"
            )
        return fmt

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
