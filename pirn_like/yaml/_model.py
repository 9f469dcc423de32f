"""The YAML pipeline format as pydantic models (its JSON Schema is ``pipeline_schema()``).

A pipeline names its nodes; a node's ``parents`` maps each input name to the id of the
node feeding it, and ``constants`` gives fixed inputs. Callables (``callable``,
``each``, ``predicate``, ``combine``) are names looked up in ``known_callables``, or in
loose mode (``allow_callable_refs: true``) import paths such as ``package.module:name``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pirn_like.core._config import ErrorPolicy

__all__ = [
    "AggregatorNode",
    "CacheSpec",
    "GateNode",
    "KnotNode",
    "MapNode",
    "Node",
    "ParameterNode",
    "Pipeline",
    "ReduceNode",
    "RetrySpec",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetrySpec(_Strict):
    """``retry:`` of a node: a ``RetryPolicy`` retrying on any ``Exception``."""

    attempts: Annotated[int, Field(ge=1)] = 3
    initial_delay: Annotated[float, Field(ge=0)] = 0.1
    multiplier: Annotated[float, Field(ge=1)] = 2.0
    max_delay: Annotated[float, Field(ge=0)] = 30.0
    jitter: Annotated[float, Field(ge=0)] = 0.1


class CacheSpec(_Strict):
    """``cache:`` of a node as a mapping (``cache: true`` takes the defaults)."""

    ttl: Annotated[float | None, Field(gt=0)] = None
    version: str = ""


class ParameterNode(_Strict):
    """A run-time input; its id is the parameter's name (the knot id is ``param:<id>``)."""

    type: Literal["parameter"]
    id: str
    type_: str = Field(default="object", description="a type name: int, float, str, bool, ...")
    has_default: bool | None = None
    default: Any = None
    description: str = ""


class _KnotFields(_Strict):
    """What every computing node has: id, wiring and the ``KnotConfig`` fields."""

    id: str
    parents: dict[str, str] = Field(
        default_factory=dict[str, str], description="input name -> id of the node feeding it"
    )
    constants: dict[str, Any] = Field(default_factory=dict[str, Any])
    description: str = ""
    error_policy: ErrorPolicy = ErrorPolicy.SKIP_IF_PARENT_FAILED
    validate_io: bool = False
    tags: list[str] = Field(default_factory=list[str])
    retry: RetrySpec | None = None
    timeout: Annotated[float | None, Field(gt=0)] = None
    max_concurrency: Annotated[int | None, Field(ge=1)] = None
    cache: bool | CacheSpec = False
    dispatcher: str | None = None


class KnotNode(_KnotFields):
    """A knot running ``callable`` (an ``@knot`` function, a Knot class or a function)."""

    type: Literal["knot"]
    callable: str


class MapNode(_KnotFields):
    """``Map``: run ``each`` once per item of the list from ``parents.over``."""

    type: Literal["map"]
    each: str
    bind: str | None = None
    item_concurrency: Annotated[int | None, Field(ge=1)] = None


class GateNode(_KnotFields):
    """``Gate``: pass ``parents.input`` on when ``predicate`` holds, else skip downstream."""

    type: Literal["gate"]
    predicate: str


class AggregatorNode(_KnotFields):
    """``Aggregator``: ``combine(**inputs)`` over every parent."""

    type: Literal["aggregator"]
    combine: str


class ReduceNode(_KnotFields):
    """``Reduce``: fold the list from ``parents.of`` with ``combine`` (from ``initial``)."""

    type: Literal["reduce"]
    combine: str
    initial: Any = Field(default=None, description="given: fold pairwise from this value")


Node = Annotated[
    ParameterNode | KnotNode | MapNode | GateNode | AggregatorNode | ReduceNode,
    Field(discriminator="type"),
]

NODE_MODELS: dict[str, type[BaseModel]] = {
    "parameter": ParameterNode,
    "knot": KnotNode,
    "map": MapNode,
    "gate": GateNode,
    "aggregator": AggregatorNode,
    "reduce": ReduceNode,
}


class Pipeline(_Strict):
    """A whole pipeline file."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="pirn_like pipeline")

    name: str
    description: str = ""
    allow_callable_refs: bool = Field(
        default=False,
        description="loose mode: resolve callables by import path (trusted YAML only)",
    )
    history: str | None = Field(default=None, description="RunHistory URL, e.g. sqlite:///runs.db")
    store: str | None = Field(default=None, description="TapestryStore URL")
    data_store: str | None = Field(default=None, description="DataStore URL, e.g. file:///data")
    max_concurrency: Annotated[int | None, Field(ge=1)] = None
    tag_limits: dict[str, Annotated[int, Field(ge=1)]] = Field(default_factory=dict[str, int])
    nodes: list[Node]
