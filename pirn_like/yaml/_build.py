"""Turn a validated Pipeline into a Tapestry: check the graph, resolve callables, wire knots.

Everything that can be checked is checked before any backend is opened or knot built,
so a malformed pipeline runs nothing and touches nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import TypeAdapter, ValidationError

from pirn_like._errors import BackendError, KnotDefinitionError, WiringError
from pirn_like._tapestry import Tapestry
from pirn_like.backends import data_store_from_url, history_from_url, store_from_url
from pirn_like.core._config import CachePolicy, KnotConfig, RetryPolicy
from pirn_like.core._knot import FunctionKnot, Knot, Parameter, knot
from pirn_like.nodes import (
    Aggregator,
    Branch,
    DictMap,
    Gate,
    Map,
    Reduce,
    Sink,
    Source,
    SubTapestry,
    ZipMap,
)
from pirn_like.protocols import Dispatcher, Emitter
from pirn_like.yaml._callables import CallableResolver
from pirn_like.yaml._model import (
    AggregatorNode,
    BranchNode,
    DictMapNode,
    GateNode,
    KnotNode,
    MapNode,
    ParameterNode,
    Pipeline,
    ReduceNode,
    SinkNode,
    SourceNode,
    SubTapestryNode,
    ZipMapNode,
)
from pirn_like.yaml._source import Located
from pirn_like.yaml._types import TYPE_NAMES, TypeSyntaxError, parse_type
from pirn_like.yaml._validate import close_matches
from pirn_like.yaml._wiring import (
    ARM,
    ClassNode,
    ComputeNode,
    Env,
    at,
    check_ids,
    check_wiring,
    topological,
)

__all__ = ["build_tapestry"]

# The base class a class-valued node's callable must subclass.
_CLASS_BASES: dict[type[Any], type[Knot]] = {
    SourceNode: Source,
    SinkNode: Sink,
    SubTapestryNode: SubTapestry,
}
# The fields naming callables, checked before anything is built.
_CALLABLE_FIELDS = ("callable", "each", "predicate", "combine", "selector")


def _parameter_spec(env: Env, i: int, node: ParameterNode) -> tuple[Any, bool]:
    """The parameter's type and whether it has a default, checked."""
    try:
        tp = parse_type(node.type_)
    except TypeSyntaxError as exc:
        names = [*TYPE_NAMES, "None", "Optional", "Literal"]
        raise env.located.error(
            f"parameter {node.id!r}: unknown type_ {node.type_!r}"
            f"{close_matches(node.type_, names) if node.type_.isidentifier() else ''}: "
            f"{exc}; expected a name ({', '.join(TYPE_NAMES)}) "
            "or an expression over them: list[int], dict[str, float], tuple[int, ...], "
            "int | None, Optional[int], Literal['a', 'b']",
            at(i, "type_"),
        ) from None
    given = "default" in node.model_fields_set
    has_default = given if node.has_default is None else node.has_default
    if has_default and not given:
        raise env.located.error(
            f"parameter {node.id!r} has has_default: true but no default", at(i, "has_default")
        )
    if given and not has_default:
        raise env.located.error(
            f"parameter {node.id!r} has a default but has_default: false; drop one of them",
            at(i, "default"),
        )
    if has_default and node.default is not None:
        try:
            TypeAdapter(tp).validate_python(node.default)
        except ValidationError as exc:
            raise env.located.error(
                f"parameter {node.id!r}: default {node.default!r} is not a valid "
                f"{node.type_}: {exc.errors()[0]['msg']}",
                at(i, "default"),
            ) from None
    return tp, has_default


def _parameter(env: Env, i: int, node: ParameterNode, t: Tapestry) -> Parameter:
    tp, has_default = _parameter_spec(env, i, node)
    if has_default:
        return Parameter(
            node.id, tp, default=node.default, description=node.description, tapestry=t
        )
    return Parameter(node.id, tp, description=node.description, tapestry=t)


def _retry(env: Env, i: int, node: ComputeNode) -> RetryPolicy | None:
    if node.retry is None:
        return None
    retry_on = tuple(
        env.resolver.resolve_exception(name, at(i, "retry", "retry_on", k))
        for k, name in enumerate(node.retry.retry_on)
    )
    return RetryPolicy(**node.retry.model_dump(exclude={"retry_on"}), retry_on=retry_on)


def _config(env: Env, i: int, node: ComputeNode) -> KnotConfig:
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
        retry=_retry(env, i, node),
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
    def __init__(self, env: Env, tapestry: Tapestry) -> None:
        self.env = env
        self.tapestry = tapestry
        self.built: dict[str, Knot] = {}
        self.knot_classes: dict[int, type[Knot]] = {}

    def reference(self, ref: str) -> Knot:
        """The knot a (checked) parent reference names, a branch arm included."""
        arm = ARM.match(ref)
        if arm and ref not in self.built:
            branch = self.built[arm["branch"]]
            assert isinstance(branch, Branch)
            return branch[arm["tag"]]
        return self.built[ref]

    def callable_of(self, i: int, field: str, name: str) -> Callable[..., Any]:
        return self.env.resolver.resolve(name, at(i, field))

    def knot_class(self, i: int, node: ClassNode) -> type[Knot]:
        target = self.callable_of(i, "callable", node.callable)
        base = _CLASS_BASES.get(type(node))
        if base is not None and not (isinstance(target, type) and issubclass(target, base)):
            shown = getattr(target, "__name__", repr(target))
            raise self.env.located.error(
                f"{node.type} node {node.id!r}: callable {node.callable!r} is {shown}, not a "
                f"subclass of {base.__name__}; write a {base.__name__} subclass (or use "
                "type: knot)",
                at(i, "callable"),
            )
        if isinstance(target, type):
            if issubclass(target, Knot) and not issubclass(target, Parameter):
                return target
            raise self.env.located.error(
                f"node {node.id!r}: callable {node.callable!r} is the class "
                f"{target.__qualname__}; a knot runs an @knot function, a Knot subclass or "
                "a plain function",
                at(i, "callable"),
            )
        cls = self.knot_classes.get(id(target))
        if cls is None:
            cls = self.knot_classes[id(target)] = knot(target)
        return cls

    def fan_out(
        self,
        i: int,
        node: MapNode | ZipMapNode | DictMapNode,
        cfg: KnotConfig,
        inputs: dict[str, Any],
    ) -> Knot:
        """A Map, ZipMap or DictMap: ``each`` run per item, the rest as for any knot."""
        common: dict[str, Any] = {
            "each": self.callable_of(i, "each", node.each),
            "max_concurrency": node.item_concurrency,
            "_config": cfg,
            "tapestry": self.tapestry,
            **inputs,
        }
        match node:
            case ZipMapNode():
                over = {n: self.reference(p) for n, p in node.over.items()}
                return ZipMap(over=over, **common)
            case DictMapNode():
                return DictMap(bind=node.bind, key_bind=node.key_bind, **common)
            case MapNode():
                return Map(bind=node.bind, **common)

    def build(self, i: int, node: ParameterNode | ComputeNode) -> Knot:
        t = self.tapestry
        if isinstance(node, ParameterNode):
            return _parameter(self.env, i, node, t)
        inputs: dict[str, Any] = {n: self.reference(p) for n, p in node.parents.items()}
        inputs.update(node.constants)
        cfg = _config(self.env, i, node)
        try:
            match node:
                case KnotNode() | SourceNode() | SinkNode() | SubTapestryNode():
                    return self.knot_class(i, node)(_config=cfg, tapestry=t, **inputs)
                case ZipMapNode() | DictMapNode() | MapNode():
                    return self.fan_out(i, node, cfg, inputs)
                case BranchNode():
                    selector = _plain(self.callable_of(i, "selector", node.selector))
                    return Branch(
                        selector=selector, branches=node.branches, _config=cfg, tapestry=t, **inputs
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
            raise self.env.located.error(f"node {node.id!r}: {exc}", at(i)) from exc


def _backend(env: Env, key: str, url: str | None, make: Callable[[str], Any]) -> Any:
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
    env = Env(pipeline, located, resolver, dispatchers)
    index = check_ids(env)
    check_wiring(env, index)
    order = topological(env, index)
    for i, node in enumerate(pipeline.nodes):  # all checked before any backend is made
        if isinstance(node, ParameterNode):
            _parameter_spec(env, i, node)
        for field in _CALLABLE_FIELDS:
            name = getattr(node, field, None)
            if isinstance(name, str):
                resolver.resolve(name, at(i, field))
        if not isinstance(node, ParameterNode):
            _retry(env, i, node)
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
