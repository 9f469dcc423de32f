"""The seam every out-of-process dispatcher shares: one payload, one worker entry point.

A remote dispatcher turns a ``KnotCall`` into bytes with :func:`pack_call`, ships them by
its own transport (a process pipe, Dask, Ray, Celery) to a worker that calls
:func:`run_payload`, and turns the bytes it gets back into the knot's value (or its
exception) with :func:`unpack_result`.

Payload and result are frames: ``MAGIC``, a kind byte (call or result), a version byte, a
flags byte, an HMAC-SHA256 when signed, a JSON header, then length-prefixed sections.
Values (inputs and the return value) travel as ``Serializer`` bytes, never plain pickle
(small strings, numbers, booleans and None ride in the JSON header itself); values larger
than ``RemoteOptions.by_reference_over`` go through a shared ``DataStore`` under their
content hash, and only the hash travels. The knot's code travels cloudpickled
(``code="pickle"``) or as an import path (``code="reference"``); a custom serializer
travels pickled next to it. With ``pickle_key`` the whole payload is signed, and a worker
holding the same key (:func:`set_worker_pickle_key` or ``PIRN_LIKE_PICKLE_KEY``, hex)
refuses anything unsigned or tampered with before unpickling a byte.

A knot's failure comes back as data (type, message, arguments, traceback text);
:func:`unpack_result` rebuilds the exception when its class is already imported here,
else raises ``RemoteKnotError``, and attaches the remote traceback as a note.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import json
import math
import os
import pickle
import socket
import struct
import sys
import traceback
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any, Literal

import anyio

from pirn_like._errors import (
    ClosedResourceError,
    MissingExtraError,
    RemoteKnotError,
    SerializationError,
    UnhashableValueError,
    UntrustedPayloadError,
    WorkerLostError,
)
from pirn_like._ids import ContentHash
from pirn_like.backends import data_store_from_url
from pirn_like.core._hashing import content_hash
from pirn_like.core._knot import FunctionKnot
from pirn_like.core._serialization import SafeSerializer
from pirn_like.protocols import DataStore, KnotCall, Serializer

__all__ = [
    "PICKLE_KEY_ENV",
    "RemoteOptions",
    "SharedOpening",
    "pack_call",
    "require_asyncio",
    "require_cloudpickle",
    "run_payload",
    "set_worker_pickle_key",
    "unpack_result",
    "worker_lost",
]

PICKLE_KEY_ENV = "PIRN_LIKE_PICKLE_KEY"
"""Environment variable a worker reads its pickle key from (hex), unless set in code."""

_MAGIC = b"\x93PLX"
_CALL, _RESULT = b"C", b"R"
_VERSION = 2
_SIGNED = 0x01
_MAC_BYTES = sha256().digest_size
_MIN_KEY_BYTES = 16
_PREFIX = len(_MAGIC) + 3
_LOCAL_SCHEMES = ("memory:",)
# Scalars JSON carries exactly (type and value): they skip the serializer.
_INLINE_TYPES = frozenset({int, str, bool, type(None)})
_INLINE_MAX_CHARS = 4096
_CODE_CACHE_SIZE = 256
_encode_json = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
_decode_json = json.JSONDecoder().decode

_worker_key: bytes | None = None
_worker_id: tuple[int, str] | None = None
# A worker runs the same few knots again and again: their code, keyed by its bytes.
_loaded_code: dict[bytes, tuple[Callable[..., Any], Serializer | None]] = {}


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoteOptions:
    """How a remote dispatcher ships knots' code and values to its workers.

    ``serializer`` turns values into bytes (default ``SafeSerializer()``). Values whose
    bytes exceed ``by_reference_over`` travel by reference through the data store at
    ``data_store_url`` (``file://``, ``valkey://``, ``s3://``: a store the workers reach
    too); without one they travel inline. ``code="pickle"`` sends the knot's code with
    cloudpickle; ``code="reference"`` sends its import path, for workers that have the
    code installed. A custom ``serializer`` travels pickled next to the code (with any
    ``pickle_key`` of its own), so workers read and write values with the same formats.

    ``pickle_key`` signs every payload; a worker holding the same key (``set_worker_pickle_key``
    or the ``PIRN_LIKE_PICKLE_KEY`` environment variable, hex) accepts only payloads signed
    with it, and a worker without one refuses signed payloads.
    """

    serializer: Serializer | None = None
    data_store_url: str | None = None
    by_reference_over: int = 1 << 20
    code: Literal["pickle", "reference"] = "pickle"
    pickle_key: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.code not in ("pickle", "reference"):
            raise ValueError(f"code must be 'pickle' or 'reference', got {self.code!r}")
        if self.by_reference_over < 0:
            raise ValueError(f"by_reference_over must be >= 0, got {self.by_reference_over}")
        if self.data_store_url is not None and self.data_store_url.startswith(_LOCAL_SCHEMES):
            raise ValueError(
                f"data_store_url {self.data_store_url!r} lives in this process only, so "
                "workers cannot read it; use a shared store (file://, valkey://, s3://)"
            )
        if self.pickle_key is not None:
            _check_key(self.pickle_key)


class SharedOpening:
    """The open state of a dispatcher that several tapestries may share: the first
    ``async with`` opens it, the last one out closes it, and closed is final."""

    __slots__ = ("_closed", "_lock", "_name", "_users")

    def __init__(self, name: str) -> None:
        self._name = name
        self._users = 0
        self._closed = False
        self._lock = anyio.Lock()

    def check(self) -> None:
        """Raise ClosedResourceError unless open."""
        if not self._users:
            state = "was closed" if self._closed else "is not open"
            raise ClosedResourceError(
                f"{self._name} {state}: use it inside `async with` (a Tapestry opens it)"
            )

    async def enter(self, open_: Callable[[], Awaitable[None]]) -> None:
        """Count one more user, calling ``open_`` for the first."""
        async with self._lock:
            if self._closed:
                raise ClosedResourceError(f"{self._name} was closed; build a new one")
            if not self._users:
                await open_()
            self._users += 1

    async def exit(self, close: Callable[[], Awaitable[None]]) -> None:
        """Count one user less, calling ``close`` (shielded) for the last."""
        with anyio.CancelScope(shield=True):
            async with self._lock:
                if not self._users:
                    return  # an exit without its enter: nothing of ours is open
                self._users -= 1
                if not self._users:
                    self._closed = True
                    await close()


def set_worker_pickle_key(key: bytes | None) -> None:
    """Make this process's workers accept only payloads signed with ``key`` (None: read
    ``PIRN_LIKE_PICKLE_KEY`` again, and accept unsigned payloads if it is unset)."""
    global _worker_key
    _worker_key = None if key is None else _check_key(key)


def require_cloudpickle(feature: str, extra: str) -> None:
    """Raise MissingExtraError unless cloudpickle is importable (call it when opening)."""
    _cloudpickle(feature, extra)


def require_asyncio(name: str, why: str) -> None:
    """Raise RuntimeError unless running on asyncio (call it when opening)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError(
            f"{name} runs on asyncio only and needs asyncio ({why}); run the tapestry "
            "with anyio.run(..., backend='asyncio') or use another dispatcher under trio"
        ) from None


def worker_lost(call: KnotCall, worker: str, reason: object) -> WorkerLostError:
    """The error a dispatcher raises when the worker running ``call`` is gone."""
    return WorkerLostError(
        f"worker {worker} running knot {call.knot_id!r} of run {call.run_id!r} died: {reason}"
    )


# -- the caller's side ---------------------------------------------------------------


async def pack_call(call: KnotCall, options: RemoteOptions) -> bytes:
    """The task payload for ``call``; large inputs are put into the data store first."""
    serializer = options.serializer or _default_serializer()
    sections: list[bytes] = []
    kwargs: dict[str, list[Any]] = {}
    by_reference: dict[ContentHash, object] = {}
    for name, value in call.kwargs.items():
        if _inlines(value):
            kwargs[name] = ["json", value]
            continue
        data = _dumps(serializer, value, f"knot {call.knot_id!r}: input {name!r}")
        digest = _reference_hash(options.data_store_url, options.by_reference_over, data, value)
        if digest is None:
            kwargs[name] = ["inline", len(sections)]
            sections.append(data)
        else:
            kwargs[name] = ["ref", digest]
            by_reference[digest] = value
    if by_reference:
        await _put_values(options.data_store_url, options.serializer, by_reference)
    header: dict[str, Any] = {
        "run": call.run_id,
        "knot": call.knot_id,
        "async": call.is_async,
        "kwargs": kwargs,
        "store": options.data_store_url,
        "over": options.by_reference_over,
        "code": options.code,
        "code_section": len(sections),
    }
    if options.code == "pickle":
        sections.append(_code_bytes(call, options.serializer))
    else:
        header["target"] = _import_path(call)
        sections.append(b"" if options.serializer is None else _pickle_plain(call, serializer))
    return _frame(_CALL, header, sections, options.pickle_key)


async def unpack_result(result: bytes, options: RemoteOptions) -> Any:
    """The knot's return value, or raise its exception (rebuilt, or ``RemoteKnotError``)."""
    header, sections = _unframe(result, _RESULT, key=None)
    serializer = options.serializer or _default_serializer()
    if header["ok"]:
        return await _read_value(header["value"], sections, serializer, options.data_store_url)
    raise _rebuild(header, sections, serializer)


# -- the worker's side ---------------------------------------------------------------


def run_payload(payload: bytes, *, unsigned_pickle: bool = True) -> bytes:
    """Run the call ``payload`` describes and return the encoded result.

    A plain module-level function, so every transport can ship it by reference. It never
    raises for a failure of the knot or of the payload: the failure is encoded instead.
    ``unsigned_pickle=False`` is for payloads that cross a shared broker (Celery): a
    worker without a pickle key then refuses any payload carrying pickled bytes, since
    anyone who can write to the broker could have sent it.
    """
    worker = _worker_name()
    serializer: Serializer = _default_serializer()
    try:
        key = _current_worker_key()
        header, sections = _unframe(payload, _CALL, key=key)
        if key is None and not unsigned_pickle and _carries_pickle(header, sections):
            raise UntrustedPayloadError(
                f"knot {header['knot']!r}: the payload carries pickled code or a pickled "
                "serializer, and this worker has no pickle key to check a signature with; "
                "send code by reference (RemoteOptions(code='reference')), or give the "
                "dispatcher and the worker the same key (register_celery_task(app, "
                "pickle_key=...))"
            )
        target, custom = _load_code(header, sections[header["code_section"]])
        serializer = custom or serializer
        refs: dict[str, list[Any]] = header["kwargs"]
        # All inputs by reference come from one opening of the store, in one event loop.
        digests = [where for kind, where in refs.values() if kind == "ref"]
        fetched = iter(
            _run_async(_get_values, header["store"], serializer, digests) if digests else ()
        )
        kwargs = {
            name: where
            if kind == "json"
            else next(fetched)
            if kind == "ref"
            else serializer.loads(sections[where])
            for name, (kind, where) in refs.items()
        }
        call = functools.partial(target, **kwargs)
        value = _run_async(call) if header["async"] else call()
        return _encode_value(header, value, serializer, custom, worker)
    except Exception as exc:
        return _encode_failure(exc, serializer, worker)


@functools.cache
def _default_serializer() -> SafeSerializer:
    """One shared default serializer per process (building one costs more than a call)."""
    return SafeSerializer()


def _worker_name() -> str:
    global _worker_id
    pid = os.getpid()  # checked each time: a forked worker has its own pid
    if _worker_id is None or _worker_id[0] != pid:
        _worker_id = (pid, f"{socket.gethostname()}/{pid}")
    return _worker_id[1]


def _inlines(value: object) -> bool:
    """Whether ``value`` rides in the JSON header: JSON gives back the same type and value."""
    kind = type(value)
    if kind in _INLINE_TYPES:
        return kind is not str or len(value) <= _INLINE_MAX_CHARS  # type: ignore[arg-type]
    return kind is float and math.isfinite(value)  # type: ignore[arg-type]


def _carries_pickle(header: Mapping[str, Any], sections: list[bytes]) -> bool:
    return header["code"] == "pickle" or bool(sections[header["code_section"]])


def _encode_value(
    header: Mapping[str, Any],
    value: object,
    serializer: Serializer,
    custom: Serializer | None,
    worker: str,
) -> bytes:
    if _inlines(value):
        return _frame(_RESULT, {"ok": True, "value": ["json", value], "worker": worker}, [], None)
    data = _dumps(serializer, value, f"knot {header['knot']!r}: return value")
    store_url: str | None = header["store"]
    digest = _reference_hash(store_url, header["over"], data, value)
    if digest is None:
        return _frame(_RESULT, {"ok": True, "value": ["inline", 0], "worker": worker}, [data], None)
    _run_async(_put_values, store_url, custom, {digest: value})
    return _frame(_RESULT, {"ok": True, "value": ["ref", digest], "worker": worker}, [], None)


def _run_async(func: Callable[..., Any], *args: Any) -> Any:
    return anyio.run(functools.partial(func, *args))


def _current_worker_key() -> bytes | None:
    if _worker_key is not None:
        return _worker_key
    raw = os.environ.get(PICKLE_KEY_ENV)
    if not raw:
        return None
    try:
        return _check_key(bytes.fromhex(raw))
    except ValueError as error:
        raise UntrustedPayloadError(
            f"{PICKLE_KEY_ENV} must be the pickle key in hex (at least {_MIN_KEY_BYTES} "
            f"bytes): {error}"
        ) from None


# -- code ----------------------------------------------------------------------------


def _code_bytes(call: KnotCall, serializer: Serializer | None) -> bytes:
    """The code section: cached for code that pickles by reference (an importable module's
    function), whose bytes cannot go stale; anything else is cloudpickled afresh each call,
    since its bytes capture the globals and closure it sees now."""
    if serializer is None:
        with contextlib.suppress(TypeError):  # an unhashable callable object
            cached = _by_reference_code(call.target)
            if cached is not None:
                return cached
    return _pickle_code(call, serializer)


@functools.lru_cache(maxsize=_CODE_CACHE_SIZE)
def _by_reference_code(target: Callable[..., Any]) -> bytes | None:
    module = getattr(target, "__module__", None)
    if module in (None, "__main__") or not hasattr(target, "__qualname__"):
        return None
    try:
        # Plain pickle stores a function or class only by reference, as cloudpickle
        # does for importable ones; it refuses the rest (lambdas, locals, ...).
        data = pickle.dumps((target, None), protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, AttributeError, TypeError):
        return None
    return data


def _pickle_code(call: KnotCall, serializer: Serializer | None) -> bytes:
    cloudpickle = _cloudpickle("sending a knot's code to a worker (code='pickle')", "pickle")
    try:
        return cloudpickle.dumps((call.target, serializer))
    except Exception as error:
        raise SerializationError(
            f"knot {call.knot_id!r}: its code cannot be pickled for a worker: "
            f"{type(error).__name__}: {error}"
        ) from error


def _pickle_plain(call: KnotCall, serializer: Serializer) -> bytes:
    try:
        return pickle.dumps(serializer)
    except Exception as error:
        raise SerializationError(
            f"knot {call.knot_id!r}: the serializer cannot be sent to a worker by reference "
            f"(code='reference'): {type(error).__name__}: {error}; make it importable or use "
            "code='pickle'"
        ) from error


def _import_path(call: KnotCall) -> str:
    target = call.target
    module = getattr(target, "__module__", None)
    qualname = getattr(target, "__qualname__", "")
    path = f"{module}:{qualname}"
    found: object = None
    if isinstance(module, str) and "<locals>" not in qualname:
        try:
            found = _resolve(module, qualname, importing=False)
        except LookupError:
            found = None
    if found is not target:
        raise SerializationError(
            f"knot {call.knot_id!r}: its code {target!r} cannot travel by reference: "
            f"{path} does not name it (only module-level functions and @knot functions "
            "can); use RemoteOptions(code='pickle')"
        )
    return path


def _load_code(
    header: Mapping[str, Any], section: bytes
) -> tuple[Callable[..., Any], Serializer | None]:
    if header["code"] == "pickle":
        loaded = _loaded_code.get(section)
        if loaded is None:
            if len(_loaded_code) >= _CODE_CACHE_SIZE:
                _loaded_code.clear()
            loaded = _loaded_code[section] = pickle.loads(section)
        return loaded
    module, _, qualname = str(header["target"]).partition(":")
    target = _resolve(module, qualname, importing=True)
    if not callable(target):
        raise TypeError(f"{header['target']} is not callable on this worker")
    return target, pickle.loads(section) if section else None


def _resolve(module_name: str, qualname: str, *, importing: bool) -> object:
    if importing:
        __import__(module_name)
    module = sys.modules.get(module_name)
    if module is None:
        raise LookupError(module_name)
    first, *rest = qualname.split(".")
    # The module's own namespace: a lazy package's __getattr__ would import on lookup.
    obj: object = vars(module)[first]
    for part in rest:
        obj = getattr(obj, part)
    if isinstance(obj, type) and issubclass(obj, FunctionKnot):
        # @knot binds the function's name to its knot class; the code is the class's fn.
        return obj.fn
    return obj


def _cloudpickle(feature: str, extra: str) -> Any:
    try:
        import cloudpickle  # pyright: ignore[reportMissingImports]
    except ImportError as error:
        raise MissingExtraError(feature, extra, "cloudpickle") from error
    return cloudpickle


# -- values --------------------------------------------------------------------------


def _dumps(serializer: Serializer, value: object, where: str) -> bytes:
    try:
        return serializer.dumps(value)
    except SerializationError as error:
        raise SerializationError(f"{where} cannot be sent between processes: {error}") from error


def _reference_hash(
    store_url: str | None, over: int, data: bytes, value: object
) -> ContentHash | None:
    if store_url is None or len(data) <= over:
        return None
    try:
        return content_hash(value)
    except (UnhashableValueError, ValueError):
        return None  # no content hash to file it under: it travels inline


def _open_store(store_url: str, serializer: Serializer | None) -> DataStore:
    extra = {} if serializer is None else {"serializer": serializer}
    return data_store_from_url(store_url, **extra)


async def _put_values(
    store_url: str | None, serializer: Serializer | None, values: Mapping[ContentHash, object]
) -> None:
    assert store_url is not None  # only values _reference_hash filed under a hash get here
    async with _open_store(store_url, serializer) as store:
        for digest, value in values.items():
            if not await store.contains(digest):
                await store.put(digest, value)


async def _get_values(
    store_url: str | None, serializer: Serializer, digests: Sequence[ContentHash]
) -> list[object]:
    if store_url is None:
        raise SerializationError(
            f"a value was sent by reference ({digests[0]}) without a data store"
        )
    async with _open_store(store_url, serializer) as store:
        return [await store.get(digest) for digest in digests]


async def _read_value(
    ref: list[Any], sections: list[bytes], serializer: Serializer, store_url: str | None
) -> object:
    kind, where = ref
    if kind == "json":
        return where
    if kind == "inline":
        return serializer.loads(sections[where])
    (value,) = await _get_values(store_url, serializer, [where])
    return value


# -- failures ------------------------------------------------------------------------


def _encode_failure(exc: Exception, serializer: Serializer, worker: str) -> bytes:
    kind = type(exc)
    sections: list[bytes] = []
    # Arguments that cannot travel leave the caller to raise RemoteKnotError instead.
    with contextlib.suppress(Exception):
        sections.append(serializer.dumps(exc.args))
    header = {
        "ok": False,
        "module": kind.__module__,
        "qualname": kind.__qualname__,
        "message": str(exc),
        "args": 0 if sections else None,
        "traceback": "".join(traceback.format_exception(exc)),
        "worker": worker,
    }
    return _frame(_RESULT, header, sections, None)


def _rebuild(header: Mapping[str, Any], sections: list[bytes], serializer: Serializer) -> Exception:
    remote_type = f"{header['module']}.{header['qualname']}"
    message: str = header["message"]
    exc = _rebuilt_exception(header, sections, serializer) or RemoteKnotError(remote_type, message)
    exc.add_note(f"remote traceback (worker {header['worker']}):\n{header['traceback']}")
    return exc


def _rebuilt_exception(
    header: Mapping[str, Any], sections: list[bytes], serializer: Serializer
) -> Exception | None:
    if header["args"] is None:
        return None
    try:
        kind = _resolve(header["module"], header["qualname"], importing=False)
        args = serializer.loads(sections[header["args"]])
        if not (isinstance(kind, type) and issubclass(kind, Exception)):
            return None
        if not isinstance(args, tuple):
            return None
        exc = kind(*args)
    except Exception:
        return None
    # A class whose constructor reshapes its arguments would tell a different story.
    return exc if str(exc) == header["message"] else None


# -- frames --------------------------------------------------------------------------


def _frame(
    kind: bytes, header: Mapping[str, Any], sections: list[bytes], key: bytes | None
) -> bytes:
    head = _encode_json(header).encode()
    parts = [struct.pack(">I", len(head)), head]
    for section in sections:
        parts += [struct.pack(">Q", len(section)), section]
    body = b"".join(parts)
    prefix = _MAGIC + kind + bytes([_VERSION, 0 if key is None else _SIGNED])
    if key is None:
        return prefix + body
    return prefix + hmac.new(key, prefix + body, sha256).digest() + body


def _unframe(data: bytes, kind: bytes, *, key: bytes | None) -> tuple[dict[str, Any], list[bytes]]:
    view = memoryview(data)
    if bytes(view[: len(_MAGIC)]) != _MAGIC or bytes(view[len(_MAGIC) : len(_MAGIC) + 1]) != kind:
        raise SerializationError(
            f"not a pirn_like remote {'payload' if kind == _CALL else 'result'}: it starts "
            f"with {bytes(view[:8])!r}"
        )
    version, flags = view[len(_MAGIC) + 1], view[len(_MAGIC) + 2]
    if version != _VERSION:
        raise SerializationError(
            f"remote frame version {version}, but this pirn_like reads version {_VERSION}: "
            "the caller and the worker run different pirn_like versions"
        )
    body = view[_PREFIX:]
    if flags & _SIGNED:
        if key is None:
            raise UntrustedPayloadError(
                "the payload is signed, but this worker has no pickle key to check it with; "
                f"set {PICKLE_KEY_ENV} (hex) or call set_worker_pickle_key() on the worker"
            )
        mac, body = bytes(body[:_MAC_BYTES]), body[_MAC_BYTES:]
        expected = hmac.new(key, bytes(view[:_PREFIX]) + bytes(body), sha256).digest()
        if not hmac.compare_digest(mac, expected):
            raise UntrustedPayloadError(
                "the payload's signature does not match: it was tampered with or signed with "
                "another key; refusing to unpickle it"
            )
    elif key is not None:
        raise UntrustedPayloadError(
            "this worker holds a pickle key and accepts only signed payloads, but this one is "
            "unsigned; give the dispatcher RemoteOptions(pickle_key=...)"
        )
    try:
        (size,) = struct.unpack_from(">I", body, 0)
        header = _decode_json(bytes(body[4 : 4 + size]).decode())
        sections: list[bytes] = []
        at = 4 + size
        while at < len(body):
            (length,) = struct.unpack_from(">Q", body, at)
            sections.append(bytes(body[at + 8 : at + 8 + length]))
            at += 8 + length
    except (struct.error, ValueError) as error:
        raise SerializationError(f"remote frame is corrupt: {error}") from error
    return header, sections


def _check_key(key: bytes) -> bytes:
    if not isinstance(key, bytes | bytearray):
        raise TypeError(f"pickle_key must be bytes, got {type(key).__name__}")
    if len(key) < _MIN_KEY_BYTES:
        raise ValueError(
            f"pickle_key must be a secret of at least {_MIN_KEY_BYTES} bytes, got {len(key)}"
        )
    return bytes(key)
