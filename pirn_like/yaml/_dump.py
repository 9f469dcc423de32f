"""``dump_pipeline``: write a Tapestry built in Python as a YAML pipeline."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import yaml

from pirn_like._errors import PipelineError
from pirn_like._tapestry import Tapestry
from pirn_like.core._config import CachePolicy, ErrorPolicy, KnotConfig
from pirn_like.core._knot import FunctionKnot, Knot, Parameter, Ref
from pirn_like.nodes import Aggregator, Gate, Map, Reduce
from pirn_like.yaml._model import RetrySpec
from pirn_like.yaml._types import type_name

__all__ = ["dump_pipeline"]

_DEFAULT_ITEM_CONCURRENCY = 512


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


def _config(cfg: KnotConfig, knot_id: str) -> dict[str, Any]:
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
        if cfg.retry.retry_on != (Exception,):
            raise PipelineError(
                f"knot {knot_id!r}: retry_on={cfg.retry.retry_on!r} cannot be written in "
                "YAML (pipelines retry on any Exception)"
            )
        out["retry"] = cfg.retry.model_dump(include=set(RetrySpec.model_fields))
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
            f"parameter {p.name!r} has type {p.type_!r}, which the YAML format cannot name"
        )
    node: dict[str, Any] = {"id": p.name, "type": "parameter", "type_": name}
    if p.has_default:
        node["has_default"] = True
        node["default"] = p.default
    if p.config.description:
        node["description"] = p.config.description
    return node


def _node(knot: Knot, names: _Names) -> dict[str, Any]:
    if isinstance(knot, Parameter):
        return _parameter(knot)
    constants = dict(knot.constants)
    node: dict[str, Any] = {"id": knot.id}
    match knot:
        case Map() if type(knot) is Map:
            node["type"] = "map"
            node["each"] = names.of(knot, knot.each.target)
            node["bind"] = knot.bind
            if knot.item_concurrency != _DEFAULT_ITEM_CONCURRENCY:
                node["item_concurrency"] = knot.item_concurrency
        case Gate():
            node.update(type="gate", predicate=names.of(knot, knot.predicate))
        case Aggregator():
            node.update(type="aggregator", combine=names.of(knot, knot.combine))
        case Reduce():
            node.update(type="reduce", combine=names.of(knot, knot.combine))
            if knot.pairwise:
                node["initial"] = constants.pop("initial")
        case FunctionKnot():
            node.update(type="knot", callable=names.of(knot, type(knot).fn))
        case _ if type(knot)._execution == "process":  # pyright: ignore[reportPrivateUsage]
            node.update(type="knot", callable=names.of(knot, type(knot)))
        case _:
            raise PipelineError(
                f"knot {knot.id!r} is a {type(knot).__qualname__}, which the YAML format "
                "does not cover (it has parameter, knot, map, gate, aggregator and reduce)"
            )
    if knot.parents:
        node["parents"] = {name: _yaml_id(parent) for name, parent in knot.parents.items()}
    if constants:
        node["constants"] = constants
    node.update(_config(knot.config, knot.id))
    return node


def dump_pipeline(
    tapestry: Tapestry,
    *,
    known_callables: Mapping[str, Callable[..., Any]],
    name: str = "pipeline",
) -> str:
    """The YAML pipeline of ``tapestry``'s knots; ``load_pipeline`` with the same
    ``known_callables`` gives back the same graph (knot ids, parents, config hashes).

    Callables are written under their name in ``known_callables``; backends and
    dispatchers are not part of the output.
    """
    names = _Names(known_callables)
    document = {"name": name, "nodes": [_node(k, names) for k in tapestry.knots.values()]}
    try:
        return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    except yaml.representer.RepresenterError as exc:
        raise PipelineError(
            f"a constant or default cannot be written as YAML: {exc}; use plain data"
        ) from exc
