"""The YAML pipeline format as pydantic models (its JSON Schema is ``pipeline_schema()``).

A pipeline names its nodes; a node's ``parents`` maps each input name to the id of the
node feeding it, and ``constants`` gives fixed inputs. Callables (``callable``,
``each``, ``predicate``, ``combine``, ``selector``) are names looked up in
``known_callables``, or in loose mode (``allow_callable_refs: true``) import paths
such as ``package.module:name``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pirn_like.core._config import ErrorPolicy

__all__ = [
    "AggregatorNode",
    "BranchNode",
    "CacheSpec",
    "CronTriggerSpec",
    "DictMapNode",
    "FileWatchTriggerSpec",
    "GateNode",
    "KafkaTriggerSpec",
    "KnotNode",
    "MapNode",
    "Node",
    "ParameterNode",
    "Pipeline",
    "ReduceNode",
    "RetrySpec",
    "ServiceSpec",
    "SinkNode",
    "SourceNode",
    "SubTapestryNode",
    "TriggerSpec",
    "ValKeyTriggerSpec",
    "WebhookTriggerSpec",
    "ZipMapNode",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetrySpec(_Strict):
    """``retry:`` of a node: a ``RetryPolicy`` (by default retrying on any ``Exception``)."""

    attempts: Annotated[int, Field(ge=1)] = 3
    initial_delay: Annotated[float, Field(ge=0)] = 0.1
    multiplier: Annotated[float, Field(ge=1)] = 2.0
    max_delay: Annotated[float, Field(ge=0)] = 30.0
    jitter: Annotated[float, Field(ge=0)] = 0.1
    retry_on: Annotated[list[str], Field(min_length=1)] = Field(
        default_factory=lambda: ["Exception"],
        description="exception classes to retry: builtin names (ValueError), names in "
        "known_callables, or in loose mode import paths (package.module:Error)",
    )


class CacheSpec(_Strict):
    """``cache:`` of a node as a mapping (``cache: true`` takes the defaults)."""

    ttl: Annotated[float | None, Field(gt=0)] = None
    version: str = ""


class ParameterNode(_Strict):
    """A run-time input; its id is the parameter's name (the knot id is ``param:<id>``)."""

    type: Literal["parameter"]
    id: str
    type_: str = Field(
        default="object",
        description="a type name (int, float, str, bool, date, ...) or an expression over "
        "them: list[int], dict[str, float], tuple[int, ...], int | None, Literal['a', 'b']",
    )
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


class _ClassNode(_KnotFields):
    callable: str


class KnotNode(_ClassNode):
    """A knot running ``callable`` (an ``@knot`` function, a Knot class or a function)."""

    type: Literal["knot"]


class SourceNode(_ClassNode):
    """A ``Source`` subclass named by ``callable``: constants only, no parents."""

    type: Literal["source"]


class SinkNode(_ClassNode):
    """A ``Sink`` subclass named by ``callable``: a terminal that pushes values out."""

    type: Literal["sink"]


class SubTapestryNode(_ClassNode):
    """A ``SubTapestry`` subclass named by ``callable``: its ``process`` builds an inner
    pipeline from its inputs, run as a child run."""

    type: Literal["sub_tapestry"]


class MapNode(_KnotFields):
    """``Map``: run ``each`` once per item of the list from ``parents.over``."""

    type: Literal["map"]
    each: str
    bind: str | None = None
    item_concurrency: Annotated[int | None, Field(ge=1)] = None


class ZipMapNode(_KnotFields):
    """``ZipMap``: run ``each`` over several lists in lock-step; ``over`` maps each
    input name of ``each`` to the id of the node giving its list."""

    type: Literal["zip_map"]
    each: str
    over: Annotated[dict[str, str], Field(min_length=1)]
    item_concurrency: Annotated[int | None, Field(ge=1)] = None


class DictMapNode(_KnotFields):
    """``DictMap``: run ``each`` once per value of the dict from ``parents.over``;
    ``bind`` takes the value, ``key_bind`` (optional) the key."""

    type: Literal["dict_map"]
    each: str
    bind: str | None = None
    key_bind: str | None = None
    item_concurrency: Annotated[int | None, Field(ge=1)] = None


class BranchNode(_KnotFields):
    """``Branch``: ``selector(parents.input)`` names one of ``branches``; other nodes
    read an arm as ``<branch id>[<tag>]`` in their ``parents``."""

    type: Literal["branch"]
    selector: str
    branches: Annotated[list[str], Field(min_length=1)]


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
    ParameterNode
    | KnotNode
    | SourceNode
    | SinkNode
    | SubTapestryNode
    | MapNode
    | ZipMapNode
    | DictMapNode
    | BranchNode
    | GateNode
    | AggregatorNode
    | ReduceNode,
    Field(discriminator="type"),
]

NODE_MODELS: dict[str, type[BaseModel]] = {
    "parameter": ParameterNode,
    "knot": KnotNode,
    "source": SourceNode,
    "sink": SinkNode,
    "sub_tapestry": SubTapestryNode,
    "map": MapNode,
    "zip_map": ZipMapNode,
    "dict_map": DictMapNode,
    "branch": BranchNode,
    "gate": GateNode,
    "aggregator": AggregatorNode,
    "reduce": ReduceNode,
}


class CronTriggerSpec(_Strict):
    """``type: cron``: a ``CronTrigger`` firing on ``cron`` or every ``every_seconds``."""

    type: Literal["cron"]
    cron: str | None = Field(default=None, description="a cron expression, e.g. '*/5 * * * *'")
    every_seconds: Annotated[float | None, Field(gt=0)] = None
    timezone: str = Field(default="UTC", description="the cron expression's time zone")
    name: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict[str, Any])
    missed_fires: Literal["skip", "run_once", "catch_up"] = "run_once"
    lease: str | None = Field(
        default=None, description="lease URL so one process of many fires, e.g. sqlite:///l.db"
    )

    @model_validator(mode="after")
    def _one_schedule(self) -> CronTriggerSpec:
        if (self.cron is None) == (self.every_seconds is None):
            raise ValueError("give exactly one of cron and every_seconds")
        return self


class WebhookTriggerSpec(_Strict):
    """``type: webhook``: a ``WebhookTrigger``; authenticated unless ``auth: false``."""

    type: Literal["webhook"]
    path: str = "/run"
    token: str | None = Field(default=None, description="bearer token, e.g. ${WEBHOOK_TOKEN}")
    token_env: str = "PIRN_LIKE_WEBHOOK_TOKEN"
    auth: bool = True
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    max_body_bytes: Annotated[int, Field(gt=0)] = 1 << 20
    body_timeout: Annotated[float, Field(gt=0)] = 30.0
    wait_timeout: Annotated[float, Field(gt=0)] = 30.0
    accept_timeout: Annotated[float, Field(gt=0)] = 5.0
    queue_size: Annotated[int, Field(gt=0)] = 64
    health_path: str = "/health"


class KafkaTriggerSpec(_Strict):
    """``type: kafka``: a ``KafkaTrigger``, one run per message of ``topic``."""

    type: Literal["kafka"]
    topic: str
    bootstrap_servers: str | list[str]
    group_id: str = "pirn-like"
    dead_letter_topic: str | None = Field(default=None, description="default: <topic>.dlq")
    client_options: dict[str, Any] = Field(default_factory=dict[str, Any])
    consumer_options: dict[str, Any] = Field(default_factory=dict[str, Any])


class ValKeyTriggerSpec(_Strict):
    """``type: valkey``: a ``ValKeyTrigger`` on a ``stream`` (consumer group) or ``channel``."""

    type: Literal["valkey"]
    url: str = Field(description="e.g. valkey://localhost:6379/0")
    stream: str | None = None
    channel: str | None = None
    group: str = "pirn_like"
    consumer: str | None = None
    dead_letter_stream: str | None = None
    min_idle: Annotated[float, Field(ge=0)] = 60.0
    start: str = "0"
    block: Annotated[float, Field(gt=0)] = 1.0
    timeout: Annotated[float, Field(gt=0)] = 10.0

    @model_validator(mode="after")
    def _one_source(self) -> ValKeyTriggerSpec:
        if (self.stream is None) == (self.channel is None):
            raise ValueError("give exactly one of stream (consumer group) and channel (pub/sub)")
        return self


class FileWatchTriggerSpec(_Strict):
    """``type: file_watch``: a ``FileWatchTrigger``, one run per settled matching file."""

    type: Literal["file_watch"]
    directory: str = Field(description="relative paths are from the working directory")
    pattern: str = "*.csv"
    debounce: Annotated[float, Field(ge=0)] = 0.5
    parameter_name: str = "path"
    recursive: bool = True
    existing: bool = False


TriggerSpec = Annotated[
    CronTriggerSpec
    | WebhookTriggerSpec
    | KafkaTriggerSpec
    | ValKeyTriggerSpec
    | FileWatchTriggerSpec,
    Field(discriminator="type"),
]

TRIGGER_MODELS: dict[str, type[BaseModel]] = {
    "cron": CronTriggerSpec,
    "webhook": WebhookTriggerSpec,
    "kafka": KafkaTriggerSpec,
    "valkey": ValKeyTriggerSpec,
    "file_watch": FileWatchTriggerSpec,
}


class ServiceSpec(_Strict):
    """``service:``: how ``run_forever`` serves the triggers."""

    max_concurrent_runs: Annotated[int, Field(ge=1)] = 8
    grace_period: Annotated[float, Field(ge=0)] = 30.0
    metrics_port: Annotated[int | None, Field(ge=0, le=65535)] = None
    metrics_host: str = "127.0.0.1"


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
    triggers: list[TriggerSpec] = Field(
        default_factory=list[TriggerSpec],
        description="what starts runs under `pirn-like serve` / load_service",
    )
    service: ServiceSpec = Field(default_factory=ServiceSpec)
