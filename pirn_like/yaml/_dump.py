"""``dump_pipeline``: write a Tapestry built in Python as a YAML pipeline."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from pirn_like._errors import PipelineError
from pirn_like._tapestry import Tapestry
from pirn_like.backends import InMemoryDataStore, InMemoryHistory, InMemoryStore
from pirn_like.core._config import CachePolicy, ErrorPolicy, KnotConfig
from pirn_like.core._knot import FunctionKnot, Knot, Parameter, Ref
from pirn_like.nodes import (
    Aggregator,
    Branch,
    BranchArm,
    DictMap,
    Gate,
    Map,
    Reduce,
    Sink,
    Source,
    SubTapestry,
    ZipMap,
)
from pirn_like.yaml._backends import backend_url
from pirn_like.yaml._model import RetrySpec
from pirn_like.yaml._types import type_name

__all__ = ["dump_pipeline"]

_DEFAULT_ITEM_CONCURRENCY = 512
# Knot subclasses written with their own node type (most specific first).
_CLASS_TYPES: tuple[tuple[type[Knot], str], ...] = (
    (Source, "source"),
    (Sink, "sink"),
    (SubTapestry, "sub_tapestry"),
)


def _yaml_id(knot: Knot | Ref) -> str:
    if isinstance(knot, Parameter):
        return knot.name
    knot_id = knot.knot_id if isinstance(knot, Ref) else knot.id
    return knot_id.removeprefix("param:")


class _Names:
    def __init__(self, known: Mapping[str, Callable[..., Any]]) -> None:
        self.by_id: dict[int, str] = {}
        for name, obj in known.items():
            self.by_id.setdefault(id(obj), name)
            if isinstance(obj, type) and issubclass(obj, FunctionKnot):
                self.by_id.setdefault(id(obj.fn), name)

    def of(self, knot: Knot, obj: object) -> str:
        name = self.by_id.get(id(obj))
        if name is None:
            shown = getattr(obj, "__qualname__", repr(obj))
            raise PipelineError(
                f"knot {knot.id!r} uses {shown}, which is not in known_callables: add it "
                "under the name the YAML should use"
            )
        return name

    def exception(self, cls: type[BaseException]) -> str:
        """A builtin's own name, else its known_callables name, else its import path
        (which loads in loose mode only)."""
        if getattr(builtins, cls.__name__, None) is cls:
            return cls.__name__
        return self.by_id.get(id(cls)) or f"{cls.__module__}:{cls.__qualname__}"


def _config(cfg: KnotConfig, names: _Names) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if cfg.description:
        out["description"] = cfg.description
    if cfg.error_policy is not ErrorPolicy.SKIP_IF_PARENT_FAILED:
        out["error_policy"] = cfg.error_policy.value
    if cfg.validate_io:
        out["validate_io"] = True
    if cfg.tags:
        out["tags"] = sorted(cfg.tags)
    if cfg.retry is not None:
        retry = cfg.retry.model_dump(include=set(RetrySpec.model_fields) - {"retry_on"})
        if cfg.retry.retry_on != (Exception,):
            retry["retry_on"] = [names.exception(c) for c in cfg.retry.retry_on]
        out["retry"] = retry
    if cfg.timeout is not None:
        out["timeout"] = cfg.timeout
    if cfg.max_concurrency is not None:
        out["max_concurrency"] = cfg.max_concurrency
    if cfg.cache is not None:
        out["cache"] = True if cfg.cache == CachePolicy() else cfg.cache.model_dump()
    if cfg.dispatcher is not None:
        out["dispatcher"] = cfg.dispatcher
    return out


def _parameter(p: Parameter) -> dict[str, Any]:
    name = type_name(p.type_)
    if name is None:
        raise PipelineError(
            f"parameter {p.name!r} has type {p.type_!r}, which the YAML format cannot name "
            "(it names builtins, date/time types and list/dict/tuple/set/Literal/| over them)"
        )
    node: dict[str, Any] = {"id": p.name, "type": "parameter", "type_": name}
    if p.has_default:
        node["has_default"] = True
        node["default"] = p.default
    if p.config.description:
        node["description"] = p.config.description
    return node


def _fan_out(node: dict[str, Any], knot: Map | ZipMap | DictMap, names: _Names) -> None:
    node["each"] = names.of(knot, knot.each.target)
    if knot.item_concurrency != _DEFAULT_ITEM_CONCURRENCY:
        node["item_concurrency"] = knot.item_concurrency


def _shape(knot: Knot, names: _Names) -> tuple[dict[str, Any], set[str]]:
    """The node's type-specific fields, and the parents they already hold."""
    node: dict[str, Any] = {"id": knot.id}
    written: set[str] = set()
    match knot:
        case Map() if type(knot) is Map:
            node["type"] = "map"
            _fan_out(node, knot, names)
            node["bind"] = knot.bind
        case ZipMap() if type(knot) is ZipMap:
            node["type"] = "zip_map"
            _fan_out(node, knot, names)
            node["over"] = {n: _yaml_id(knot.parents[n]) for n in knot.zipped}
            written.update(knot.zipped)
        case DictMap() if type(knot) is DictMap:
            node["type"] = "dict_map"
            _fan_out(node, knot, names)
            node["bind"] = knot.bind
            if knot.key_bind is not None:
                node["key_bind"] = knot.key_bind
        case Branch():
            node.update(
                type="branch", selector=names.of(knot, knot.selector), branches=list(knot.branches)
            )
        case Gate():
            node.update(type="gate", predicate=names.of(knot, knot.predicate))
        case Aggregator():
            node.update(type="aggregator", combine=names.of(knot, knot.combine))
        case Reduce():
            node.update(type="reduce", combine=names.of(knot, knot.combine))
        case FunctionKnot():
            node.update(type="knot", callable=names.of(knot, type(knot).fn))
        case _:
            kind = next((t for base, t in _CLASS_TYPES if isinstance(knot, base)), None)
            if kind is None and type(knot)._execution != "process":  # pyright: ignore[reportPrivateUsage]
                raise PipelineError(
                    f"knot {knot.id!r} is a {type(knot).__qualname__}, which the YAML format "
                    "does not cover (it has parameter, knot, source, sink, sub_tapestry, map, "
                    "zip_map, dict_map, branch, gate, aggregator and reduce)"
                )
            node.update(type=kind or "knot", callable=names.of(knot, type(knot)))
    return node, written


def _node(knot: Knot, names: _Names) -> dict[str, Any]:
    if isinstance(knot, Parameter):
        return _parameter(knot)
    node, written = _shape(knot, names)
    constants = dict(knot.constants)
    if isinstance(knot, Reduce) and knot.pairwise:
        node["initial"] = constants.pop("initial")
    parents = {n: _yaml_id(p) for n, p in knot.parents.items() if n not in written}
    if parents:
        node["parents"] = parents
    if constants:
        node["constants"] = constants
    node.update(_config(knot.config, names))
    return node


def _top_level(
    tapestry: Tapestry,
    name: str,
    urls: Mapping[str, str | None],
) -> dict[str, Any]:
    document: dict[str, Any] = {"name": name}
    defaults = {
        "history": (tapestry.history, InMemoryHistory),
        "store": (tapestry.store, InMemoryStore),
        "data_store": (tapestry.data_store, None),
    }
    for key, (backend, default) in defaults.items():
        given = urls.get(key)
        if given is None and (backend is None or (default and type(backend) is default)):
            continue  # the default backend: nothing to write
        if given is None and isinstance(backend, InMemoryDataStore):
            given = "memory://"
        document[key] = backend_url(key, backend, given)
    if tapestry.max_concurrency is not None:
        document["max_concurrency"] = tapestry.max_concurrency
    if tapestry.tag_limits:
        document["tag_limits"] = dict(tapestry.tag_limits)
    return document


def dump_pipeline(
    tapestry: Tapestry,
    *,
    known_callables: Mapping[str, Callable[..., Any]],
    name: str = "pipeline",
    history: str | None = None,
    store: str | None = None,
    data_store: str | None = None,
) -> str:
    """The YAML pipeline of ``tapestry``; ``load_pipeline`` with the same
    ``known_callables`` gives back the same graph (knot ids, parents, config hashes).

    Callables (and exception classes of ``RetryPolicy.retry_on``) are written under
    their name in ``known_callables``; builtin exceptions under their own name, other
    exceptions as import paths (which load in loose mode only). Backends are written
    as URLs: ``history``/``store``/``data_store`` give them, else the backend's own URL
    where it has one. A password in a URL is never written: it becomes ``${VAR}``
    (e.g. ``${HISTORY_PASSWORD}``) for the loader to read from the environment.
    Dispatchers are application objects: knots keep their ``dispatcher`` name, and the
    loader takes the objects as ``load_pipeline(dispatchers={...})``.
    """
    names = _Names(known_callables)
    document = _top_level(
        tapestry, name, {"history": history, "store": store, "data_store": data_store}
    )
    document["nodes"] = [
        _node(k, names) for k in tapestry.knots.values() if not isinstance(k, BranchArm)
    ]
    try:
        return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    except yaml.representer.RepresenterError as exc:
        raise PipelineError(
            f"a constant or default cannot be written as YAML: {exc}; use plain data"
        ) from exc
