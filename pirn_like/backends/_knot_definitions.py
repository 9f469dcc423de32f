"""Knot definitions: how a persistent TapestryStore writes a knot down and reads it back.

A knot is stored as one JSON document (format 1)::

    {
      "format": 1,
      "id": "total",
      "class": {"ref": "myapp.flows:add"},
      "config": {"id": "total", "error_policy": "skip_if_parent_failed", ...},
      "parents": {"x": "load", "n": "param:n"},
      "constants": {"scale": {"value": 2}, "since": {"data": "<base64 Serializer bytes>"}},
      "state": {},
      "config_hash": "sha256:..."
    }

``config`` is ``KnotConfig.model_dump(mode="json")`` with ``tags`` sorted and
``retry.retry_on`` as ``"module:qualname"`` references. ``parents`` maps each input to
the id of the knot that feeds it (read back as a ``Ref``). ``state`` is the rest of the
knot's object state as pickle sees it (``__getstate__``, minus the fields above and
cached values): what built-in nodes keep besides constants (Map's ``each``, a Gate's
``predicate``, a Parameter's ``type_``). A knot class may shape it with
``__getstate__``/``__setstate__``.

Each value is a JSON object with one key, its tag:

- ``{"value": v}``: a str, int, bool or None, as JSON;
- ``{"data": "<base64>"}``: bytes from the store's ``Serializer``;
- ``{"ref": "module:qualname"}``: a class or module-level function, by reference;
- ``{"knot_function": "module:qualname"}``: the function behind an ``@knot`` class;
- ``{"knot": "<id>"}``: another knot, read back as ``Ref(id)``;
- ``{"list"|"tuple"|"set"|"frozenset": [values]}``, ``{"dict": [[key, value], ...]}``;
- ``{"dataclass": ["module:qualname", {field: value}]}``;
- ``{"generic": [origin, [args]]}``: a parametrized type such as ``list[int]``.

Lists, tuples, sets and dicts are taken apart; other values go through the Serializer,
and a dataclass it refuses (one holding a function) is stored field by field. A lambda
or closure can only be stored by a Serializer that pickles (signed); otherwise
``SerializationError`` names the knot and the argument.

Reading never imports a module named by stored data unless the codec was told it may:
classes and functions are looked up in ``sys.modules``.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import importlib
import json
import operator
import sys
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pirn_like._errors import SerializationError
from pirn_like._ids import KnotId
from pirn_like.core._config import KnotConfig
from pirn_like.core._hashing import combine_hashes
from pirn_like.core._knot import FunctionKnot, Knot, Ref
from pirn_like.protocols import Serializer

__all__ = ["DefinitionCodec", "KnotDefinition", "ModuleImports"]

FORMAT = 1

ModuleImports = bool | Sequence[str]
"""Which modules reading a definition may import: none (False), any (True), or those
under the given package prefixes."""

_OWN_FIELDS = ("id", "config", "parents", "constants")
# Values the core and the tapestry cache on a knot; they are recomputed after loading.
_CACHED_FIELDS = frozenset({"_config_hash", "_adapter"})
_JSON_SCALARS = frozenset({str, int, bool, types.NoneType})
_SEQUENCES: dict[str, type[Any]] = {
    "list": list,
    "tuple": tuple,
    "set": set,
    "frozenset": frozenset,
}


@dataclass(frozen=True, slots=True)
class KnotDefinition:
    """One knot, written down: its JSON ``document`` and a ``fingerprint`` that is equal
    for equal definitions (same class, config, wiring and config hash)."""

    knot_id: KnotId
    document: str
    fingerprint: str


class _Unstorable(Exception):
    """A value has no stored form; the codec adds the knot and argument to the message."""


class DefinitionCodec:
    """Turns knots into ``KnotDefinition`` documents and documents back into knots."""

    def __init__(self, serializer: Serializer, *, import_modules: ModuleImports = False) -> None:
        self._serializer = serializer
        self._imports = import_modules

    # -- writing ----------------------------------------------------------------

    def encode(self, knot: Knot) -> KnotDefinition:
        """The definition of ``knot``; ``SerializationError`` naming the knot and the
        argument if part of it cannot be stored."""
        state = knot.__getstate__()
        if not isinstance(state, dict):
            raise SerializationError(
                f"knot {knot.id!r}: {type(knot).__qualname__}.__getstate__() returned "
                f"{type(state).__name__}; a stored knot needs a dict of attributes"
            )
        extra = {
            name: value
            for name, value in typing.cast(dict[str, object], state).items()
            if name not in _OWN_FIELDS and name not in _CACHED_FIELDS
        }
        parents = {
            name: p.knot_id if isinstance(p, Ref) else p.id for name, p in knot.parents.items()
        }
        knot_class = self._encode_part(knot, "its class", type(knot))
        config = _config_document(knot.config)
        constants = {
            name: self._encode_part(knot, f"constant {name!r}", value)
            for name, value in knot.constants.items()
        }
        attributes = {
            name: self._encode_part(knot, f"attribute {name!r}", value)
            for name, value in extra.items()
        }
        config_hash = knot.config_hash
        document = {
            "format": FORMAT,
            "id": knot.id,
            "class": knot_class,
            "config": config,
            "parents": parents,
            "constants": constants,
            "state": attributes,
            "config_hash": config_hash,
        }
        fingerprint = combine_hashes(
            [_canonical(knot_class), _canonical(config), _canonical(parents), config_hash]
        )
        return KnotDefinition(knot.id, json.dumps(document, sort_keys=True), fingerprint)

    def _encode_part(self, knot: Knot, what: str, value: object) -> object:
        try:
            return self._encode(value)
        except _Unstorable as exc:
            raise SerializationError(f"knot {knot.id!r}, {what}: {exc}") from None

    def _encode(self, value: object) -> object:
        if isinstance(value, Knot):
            return {"knot": value.id}
        if isinstance(value, Ref):
            return {"knot": value.knot_id}
        if typing.get_origin(value) is not None:
            origin, args = typing.get_origin(value), typing.get_args(value)
            return {"generic": [self._encode(origin), [self._encode(a) for a in args]]}
        if callable(value):
            return self._encode_code(value)
        kind = type(value)
        if kind in _JSON_SCALARS:
            return {"value": value}
        for tag, container in _SEQUENCES.items():
            if kind is container:
                return {tag: [self._encode(v) for v in typing.cast(Sequence[object], value)]}
        if kind is dict:
            items = typing.cast(dict[object, object], value).items()
            return {"dict": [[self._encode(k), self._encode(v)] for k, v in items]}
        try:
            return {"data": base64.b64encode(self._serializer.dumps(value)).decode("ascii")}
        except SerializationError as exc:
            return self._encode_dataclass(value, exc)

    def _encode_code(self, value: Callable[..., Any]) -> object:
        ref = _reference(value)
        if ref is not None:
            return {"ref": ref}
        ref = _knot_function_reference(value)
        if ref is not None:
            return {"knot_function": ref}
        try:
            return {"data": base64.b64encode(self._serializer.dumps(value)).decode("ascii")}
        except SerializationError as exc:
            name = getattr(value, "__qualname__", type(value).__qualname__)
            raise _Unstorable(
                f"{name} ({getattr(value, '__module__', '?')}) is not importable by name, and "
                f"the store's serializer cannot store code ({exc}). Define it at module "
                "level, or give the store a serializer that pickles "
                "(SafeSerializer(pickle_key=...))"
            ) from None

    def _encode_dataclass(self, value: object, cause: SerializationError) -> object:
        """A dataclass the serializer refused (it holds code or knots), field by field."""
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            ref = _reference(type(value))
            if ref is not None:
                fields = {
                    f.name: self._encode(getattr(value, f.name))
                    for f in dataclasses.fields(value)
                    if f.init
                }
                return {"dataclass": [ref, fields]}
        raise _Unstorable(str(cause))

    # -- reading ----------------------------------------------------------------

    def decode(self, document: str) -> Knot:
        """The knot a document describes. ``SerializationError`` if it cannot be read
        here: malformed, written by a newer format, or naming code this process has not
        imported (and may not import)."""
        try:
            doc = json.loads(document)
            knot_id = doc["id"]
            if doc["format"] > FORMAT:
                raise SerializationError(
                    f"knot {knot_id!r} was stored in definition format {doc['format']}; "
                    f"this pirn_like reads up to format {FORMAT}: upgrade pirn_like"
                )
            cls = self._decode_part(knot_id, "its class", doc["class"])
            if not (isinstance(cls, type) and issubclass(cls, Knot)):
                raise SerializationError(f"knot {knot_id!r}: {cls!r} is not a Knot class")
            state: dict[str, object] = {
                "id": KnotId(knot_id),
                "config": self._decode_config(doc["config"]),
                "parents": {name: Ref(pid) for name, pid in doc["parents"].items()},
                "constants": {
                    name: self._decode_part(knot_id, f"constant {name!r}", v)
                    for name, v in doc["constants"].items()
                },
            }
            state.update(
                (name, self._decode_part(knot_id, f"attribute {name!r}", v))
                for name, v in doc["state"].items()
            )
            knot = cls.__new__(cls)
            setstate = getattr(knot, "__setstate__", None)
            if setstate is not None:
                setstate(state)
            else:
                knot.__dict__.update(state)
            return knot
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, SerializationError):
                raise
            raise SerializationError(
                f"a stored knot definition cannot be read ({type(exc).__name__}: {exc}): "
                f"{document[:200]}"
            ) from exc

    def _decode_part(self, knot_id: str, what: str, value: object) -> Any:
        try:
            return self._decode(value)
        except SerializationError as exc:
            raise SerializationError(f"knot {knot_id!r}, {what}: {exc}") from None

    def _decode(self, value: Any) -> Any:
        ((tag, body),) = value.items()
        if tag == "value":
            return body
        if tag == "data":
            return self._serializer.loads(base64.b64decode(body))
        if tag == "ref":
            return self._resolve(body)
        if tag == "knot_function":
            owner = self._resolve(body)
            if not (isinstance(owner, type) and issubclass(owner, FunctionKnot)):
                raise SerializationError(f"{body!r} is not an @knot function")
            return owner.fn
        if tag == "knot":
            return Ref(body)
        if tag in _SEQUENCES:
            return _SEQUENCES[tag](self._decode(v) for v in body)
        if tag == "dict":
            return {self._decode(k): self._decode(v) for k, v in body}
        if tag == "dataclass":
            ref, fields = body
            cls = self._resolve(ref)
            if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
                raise SerializationError(f"{ref!r} is not a dataclass")
            return cls(**{name: self._decode(v) for name, v in fields.items()})
        if tag == "generic":
            origin, args = body
            return _parametrize(self._decode(origin), [self._decode(a) for a in args])
        raise SerializationError(f"unknown value tag {tag!r}")

    def _decode_config(self, config: dict[str, Any]) -> KnotConfig:
        retry = config.get("retry")
        if retry is not None:
            config = {
                **config,
                "retry": {**retry, "retry_on": tuple(map(self._resolve, retry["retry_on"]))},
            }
        return KnotConfig.model_validate(config)

    def _resolve(self, ref: str) -> Any:
        module_name, _, qualname = ref.partition(":")
        module = sys.modules.get(module_name)
        if module is None:
            if not self._may_import(module_name):
                raise SerializationError(
                    f"{ref!r} is in module {module_name!r}, which is not imported; import it "
                    "before opening the store, or let the store import it "
                    f"(import_modules=True or import_modules=[{module_name.split('.')[0]!r}])"
                )
            try:
                module = importlib.import_module(module_name)
            except ImportError as exc:
                raise SerializationError(f"{ref!r}: cannot import {module_name!r}: {exc}") from exc
        try:
            found = _walk(module, qualname)
        except AttributeError:
            raise SerializationError(
                f"{ref!r}: module {module_name!r} has no {qualname!r} (renamed or removed?)"
            ) from None
        if not callable(found):
            raise SerializationError(f"{ref!r} is not a class or function")
        return found

    def _may_import(self, module_name: str) -> bool:
        if isinstance(self._imports, bool):
            return self._imports
        return any(module_name == p or module_name.startswith(f"{p}.") for p in self._imports)


def _config_document(config: KnotConfig) -> dict[str, Any]:
    document = config.model_dump(mode="json", exclude={"retry": {"retry_on"}})
    # A frozenset dumps in hash order, which differs between processes.
    document["tags"] = sorted(document["tags"])
    if config.retry is not None:
        refs = [_reference(t) for t in config.retry.retry_on]
        if None in refs:
            raise SerializationError(
                f"knot {config.id!r}: RetryPolicy.retry_on names an exception class that is "
                f"not importable by name ({config.retry.retry_on}); define it at module level"
            )
        document["retry"]["retry_on"] = refs
    return document


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _walk(root: object, qualname: str) -> object:
    found = root
    for part in qualname.split("."):
        found = getattr(found, part)
    return found


def _name_of(value: object) -> tuple[str, object] | None:
    """``module:qualname`` of ``value`` and what that name holds in ``sys.modules``."""
    if value is types.NoneType:
        return "types:NoneType", value  # its __module__ says builtins, where it has no name
    module = getattr(value, "__module__", None)
    # Special forms (typing.Union, typing.Literal) have a _name but no __qualname__.
    qualname = getattr(value, "__qualname__", None) or getattr(value, "_name", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or "<" in qualname:
        return None
    try:
        return f"{module}:{qualname}", _walk(sys.modules[module], qualname)
    except (KeyError, AttributeError):
        return None


def _reference(value: object) -> str | None:
    """``module:qualname`` if looking that up in ``sys.modules`` gives ``value`` back."""
    named = _name_of(value)
    return named[0] if named is not None and named[1] is value else None


def _knot_function_reference(value: object) -> str | None:
    """The ``@knot`` class standing at ``value``'s name, when ``value`` is its function."""
    named = _name_of(value)
    if named is None:
        return None
    ref, owner = named
    if isinstance(owner, type) and issubclass(owner, FunctionKnot) and owner.fn is value:
        return ref
    return None


def _parametrize(origin: Any, args: list[Any]) -> Any:
    if origin is types.UnionType:
        return functools.reduce(operator.or_, args)
    return origin[tuple(args)]
