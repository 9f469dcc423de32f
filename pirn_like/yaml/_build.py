"""Turn a validated Pipeline into a Tapestry: check the graph, resolve callables, wire knots.

Everything that can be checked is checked before any backend is opened or knot built,
so a malformed pipeline runs nothing and touches nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from pirn_like._errors import BackendError, KnotDefinitionError, WiringError
from pirn_like._tapestry import Tapestry
from pirn_like.backends import data_store_from_url, history_from_url, store_from_url
from pirn_like.core._config import CachePolicy, KnotConfig, RetryPolicy
from pirn_like.core._knot import FunctionKnot, Knot, Parameter, check_knot_id, knot
from pirn_like.nodes import Aggregator, Gate, Map, Reduce
from pirn_like.protocols import Dispatcher, Emitter
from pirn_like.yaml._callables import CallableResolver
from pirn_like.yaml._model import (
    AggregatorNode,
    GateNode,
    KnotNode,
    MapNode,
    ParameterNode,
    Pipeline,
    ReduceNode,
)
from pirn_like.yaml._source import Located, Path
from pirn_like.yaml._types import TYPE_NAMES
from pirn_like.yaml._validate import close_matches

__all__ = ["build_tapestry"]

_ComputeNode = KnotNode | MapNode | GateNode | AggregatorNode | ReduceNode
# The parent each node shape needs, and what it holds.
_REQUIRED_PARENT: dict[type[Any], tuple[str, str]] = {
    MapNode: ("over", "the node giving the list to map over"),
    GateNode: ("input", "the node whose value the gate passes on"),
    ReduceNode: ("of", "the node giving the list to fold"),
}


@dataclass(frozen=True, slots=True)
class _Env:
    pipeline: Pipeline
    located: Located
    resolver: CallableResolver
    dispatchers: Mapping[str, Dispatcher]


def _at(index: int, *rest: str | int) -> Path:
    return ("nodes", index, *rest)


def _check_ids(env: _Env) -> dict[str, int]:
    index: dict[str, int] = {}
    for i, node in enumerate(env.pipeline.nodes):
        try:
            check_knot_id(node.id)
        except WiringError as exc:
            raise env.located.error(str(exc), _at(i, "id")) from None
        if node.id in index:
            first = env.located.mark(_at(index[node.id], "id"))
            where = f" (first at line {first.line})" if first else ""
            raise env.located.error(
                f"duplicate node id {node.id!r}{where}: every node needs its own id", _at(i, "id")
            )
        index[node.id] = i
    return index


def _check_wiring(env: _Env, index: Mapping[str, int]) -> None:
    ids = list(index)
    for i, node in enumerate(env.pipeline.nodes):
        if isinstance(node, ParameterNode):
            continue
        for name, parent in node.parents.items():
            if parent not in index:
                raise env.located.error(
                    f"node {node.id!r}: parent {name!r} refers to unknown node "
                    f"{parent!r}{close_matches(parent, ids)}",
                    _at(i, "parents", name),
                )
        both = sorted(set(node.parents) & set(node.constants))
        if both:
            raise env.located.error(
                f"node {node.id!r}: input {both[0]!r} is given both in parents and constants",
                _at(i, "constants", both[0]),
                key=True,
            )
        required = _REQUIRED_PARENT.get(type(node))
        if required and required[0] not in node.parents:
            raise env.located.error(
                f"{node.type} node {node.id!r} needs parents.{required[0]}: the id of "
                f"{required[1]}",
                _at(i),
            )
        if isinstance(node, AggregatorNode) and not node.parents:
            raise env.located.error(
                f"aggregator node {node.id!r} needs at least one entry in parents", _at(i)
            )
        if node.cache is not False and env.pipeline.data_store is None:
            raise env.located.error(
                f"node {node.id!r}: cache replays outputs from a data store: set data_store "
                "at the top level (e.g. memory:// or file:///path/to/values)",
                _at(i, "cache"),
                key=True,
            )
        if node.dispatcher is not None and node.dispatcher not in env.dispatchers:
            raise env.located.error(
                f"node {node.id!r}: unknown dispatcher {node.dispatcher!r}"
                f"{close_matches(node.dispatcher, list(env.dispatchers))}; pass it to "
                f"load_pipeline(dispatchers={{{node.dispatcher!r}: ...}}) (given: "
                f"{sorted(env.dispatchers) or 'none'})",
                _at(i, "dispatcher"),
            )


def _topological(env: _Env, index: Mapping[str, int]) -> list[int]:
    """Node indexes, parents first; a ring is reported at its first node."""
    order: list[int] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    nodes = env.pipeline.nodes

    def parents_of(node_id: str) -> list[str]:
        node = nodes[index[node_id]]
        return [] if isinstance(node, ParameterNode) else list(node.parents.values())

    for root in index:
        stack: list[tuple[str, list[str]]] = []
        if state.get(root) == 2:
            continue
        state[root] = 1
        stack.append((root, parents_of(root)))
        while stack:
            current, pending = stack[-1]
            if not pending:
                stack.pop()
                state[current] = 2
                order.append(index[current])
                continue
            nxt = pending.pop()
            if state.get(nxt) == 1:
                path = [n for n, _ in stack]
                ring = path[path.index(nxt) :]  # each node reads the next one
                start = min(range(len(ring)), key=lambda k: index[ring[k]])
                ring = ring[start:] + ring[:start]
                shown = " -> ".join([*ring, ring[0]])
                raise env.located.error(
                    f"the pipeline has a cycle (each node reads the next): {shown}; "
                    "a node cannot depend on itself",
                    _at(index[ring[0]], "parents"),
                    key=True,
                )
            if state.get(nxt) is None:
                state[nxt] = 1
                stack.append((nxt, parents_of(nxt)))
    return order


def _parameter_spec(env: _Env, i: int, node: ParameterNode) -> tuple[Any, bool]:
    """The parameter's type and whether it has a default, checked."""
    tp = TYPE_NAMES.get(node.type_)
    if tp is None:
        raise env.located.error(
            f"parameter {node.id!r}: unknown type_ {node.type_!r}"
            f"{close_matches(node.type_, list(TYPE_NAMES))}; expected one of: "
            f"{', '.join(TYPE_NAMES)}",
            _at(i, "type_"),
        )
    given = "default" in node.model_fields_set
    has_default = given if node.has_default is None else node.has_default
    if has_default and not given:
        raise env.located.error(
            f"parameter {node.id!r} has has_default: true but no default", _at(i, "has_default")
        )
    if given and not has_default:
        raise env.located.error(
            f"parameter {node.id!r} has a default but has_default: false; drop one of them",
            _at(i, "default"),
        )
    if has_default and node.default is not None:
        try:
            TypeAdapter(tp).validate_python(node.default)
        except ValidationError as exc:
            raise env.located.error(
                f"parameter {node.id!r}: default {node.default!r} is not a valid "
                f"{node.type_}: {exc.errors()[0]['msg']}",
                _at(i, "default"),
            ) from None
    return tp, has_default


def _parameter(env: _Env, i: int, node: ParameterNode, t: Tapestry) -> Parameter:
    tp, has_default = _parameter_spec(env, i, node)
    if has_default:
        return Parameter(
            node.id, tp, default=node.default, description=node.description, tapestry=t
        )
    return Parameter(node.id, tp, description=node.description, tapestry=t)


def _config(node: _ComputeNode) -> KnotConfig:
    cache = node.cache
    policy: CachePolicy | None = (
        (CachePolicy() if cache else None)
        if isinstance(cache, bool)
        else CachePolicy(**cache.model_dump())
    )
    return KnotConfig(
        id=node.id,
        error_policy=node.error_policy,
        validate_io=node.validate_io,
        description=node.description,
        tags=frozenset(node.tags),
        retry=RetryPolicy(**node.retry.model_dump()) if node.retry else None,
        timeout=node.timeout,
        max_concurrency=node.max_concurrency,
        cache=policy,
        dispatcher=node.dispatcher,
    )


def _plain(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The function behind an ``@knot`` class (nodes call predicates, not knots)."""
    if isinstance(fn, type) and issubclass(fn, FunctionKnot):
        return fn.fn
    return fn


class _Builder:
    def __init__(self, env: _Env, tapestry: Tapestry) -> None:
        self.env = env
        self.tapestry = tapestry
        self.built: dict[str, Knot] = {}
        self.knot_classes: dict[int, type[Knot]] = {}

    def callable_of(self, i: int, field: str, name: str) -> Callable[..., Any]:
        return self.env.resolver.resolve(name, _at(i, field))

    def knot_class(self, i: int, node: KnotNode) -> type[Knot]:
        target = self.callable_of(i, "callable", node.callable)
        if isinstance(target, type):
            if issubclass(target, Knot) and not issubclass(target, Parameter):
                return target
            raise self.env.located.error(
                f"node {node.id!r}: callable {node.callable!r} is the class "
                f"{target.__qualname__}; a knot runs an @knot function, a Knot subclass or "
                "a plain function",
                _at(i, "callable"),
            )
        cls = self.knot_classes.get(id(target))
        if cls is None:
            cls = self.knot_classes[id(target)] = knot(target)
        return cls

    def build(self, i: int, node: ParameterNode | _ComputeNode) -> Knot:
        t = self.tapestry
        if isinstance(node, ParameterNode):
            return _parameter(self.env, i, node, t)
        inputs: dict[str, Any] = {n: self.built[p] for n, p in node.parents.items()}
        inputs.update(node.constants)
        cfg = _config(node)
        try:
            match node:
                case KnotNode():
                    return self.knot_class(i, node)(_config=cfg, tapestry=t, **inputs)
                case MapNode():
                    each = self.callable_of(i, "each", node.each)
                    return Map(
                        each=each,
                        bind=node.bind,
                        max_concurrency=node.item_concurrency,
                        _config=cfg,
                        tapestry=t,
                        **inputs,
                    )
                case GateNode():
                    predicate = _plain(self.callable_of(i, "predicate", node.predicate))
                    return Gate(predicate=predicate, _config=cfg, tapestry=t, **inputs)
                case AggregatorNode():
                    combine = _plain(self.callable_of(i, "combine", node.combine))
                    return Aggregator(combine=combine, _config=cfg, tapestry=t, **inputs)
                case ReduceNode():
                    combine = _plain(self.callable_of(i, "combine", node.combine))
                    if "initial" in node.model_fields_set:
                        inputs["initial"] = node.initial
                    return Reduce(combine=combine, _config=cfg, tapestry=t, **inputs)
        except (WiringError, KnotDefinitionError, TypeError) as exc:
            raise self.env.located.error(f"node {node.id!r}: {exc}", _at(i)) from exc


def _backend(env: _Env, key: str, url: str | None, make: Callable[[str], Any]) -> Any:
    if url is None:
        return None
    try:
        return make(url)
    except (BackendError, ValueError) as exc:
        raise env.located.error(f"{key}: {exc}", (key,)) from exc


def build_tapestry(
    pipeline: Pipeline,
    located: Located,
    *,
    known_callables: Mapping[str, Callable[..., Any]],
    loose: bool,
    dispatcher: Dispatcher | None,
    dispatchers: Mapping[str, Dispatcher],
    emitters: Sequence[Emitter],
) -> Tapestry:
    """The Tapestry the pipeline describes (not opened: backends open on first run)."""
    resolver = CallableResolver(known_callables, loose=loose, located=located)
    env = _Env(pipeline, located, resolver, dispatchers)
    index = _check_ids(env)
    _check_wiring(env, index)
    order = _topological(env, index)
    for i, node in enumerate(pipeline.nodes):  # all checked before any backend is made
        if isinstance(node, ParameterNode):
            _parameter_spec(env, i, node)
        for field in ("callable", "each", "predicate", "combine"):
            name = getattr(node, field, None)
            if isinstance(name, str):
                resolver.resolve(name, _at(i, field))
    tapestry = Tapestry(
        store=_backend(env, "store", pipeline.store, store_from_url),
        history=_backend(env, "history", pipeline.history, history_from_url),
        data_store=_backend(env, "data_store", pipeline.data_store, data_store_from_url),
        dispatcher=dispatcher,
        dispatchers=dispatchers,
        emitters=emitters,
        max_concurrency=pipeline.max_concurrency,
        tag_limits=pipeline.tag_limits,
    )
    builder = _Builder(env, tapestry)
    for i in order:
        node = pipeline.nodes[i]
        builder.built[node.id] = builder.build(i, node)
    return tapestry
