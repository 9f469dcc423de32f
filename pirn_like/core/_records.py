"""Records of runs: the request, the result, lineage, status events and run summaries.

No postponed annotations here: pydantic resolves the named tuples' annotations in
their public module (``pirn_like``), so they must be real objects.
"""

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, GetCoreSchemaHandler
from pydantic_core import core_schema

from pirn_like._ids import ContentHash, KnotId, RunId
from pirn_like.core._hashing import combine_hashes
from pirn_like.core._results import ExceptionRecord, Outcome, Result, SkipReason

__all__ = [
    "STORED_EXCEPTIONS",
    "CacheMiss",
    "KnotLineage",
    "RetentionReport",
    "execution_hash",
    "RunRecord",
    "RunRequest",
    "RunOutcome",
    "RunResult",
    "RunStatus",
    "StatusEvent",
    "stored_exceptions",
]

STORED_EXCEPTIONS = 100
"""At most this many of a run's exception records are kept in its ``RunRecord``
(``error_ids`` names them all)."""


class RunStatus(enum.StrEnum):
    """Where a run stands, or how it ended."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"


class RunRequest(BaseModel):
    """What to run: parameter values and the run's identity.

    ``run_id`` is generated when omitted. ``trigger`` describes what started the run
    (kind, source, message id, ...) and is kept in history.
    """

    model_config = ConfigDict(frozen=True, defer_build=True)

    parameters: dict[str, Any] = Field(default_factory=dict)
    run_id: str | None = None
    trigger: dict[str, Any] | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    parent_run_id: str | None = None
    parent_knot_id: str | None = None


class KnotLineage(NamedTuple):
    """What one knot execution consumed and produced, by content hash.

    ``knot_config_hash`` covers the knot's class, constants and output-relevant
    config; ``parent_input_hashes`` maps each input name to the hash of the value it
    received. ``output_hash`` is set when the outcome is ``ok``. An immutable
    named tuple: cheap to create on the engine's hot path, easy to serialize.
    """

    run_id: RunId
    knot_id: KnotId
    knot_class: str
    knot_config_hash: ContentHash
    parent_input_hashes: Mapping[str, ContentHash]
    parent_knot_ids: Mapping[str, KnotId]
    output_hash: ContentHash | None
    outcome: Outcome
    skip_reason: SkipReason | None
    skip_detail: str | None
    error_record_id: str | None
    dispatcher: str
    started_at: datetime
    finished_at: datetime
    attempts: int
    pirn_like_version: str
    cache_key: ContentHash | None = None
    """Set for knots with a cache policy: the key their output is memoized under."""
    cached_from: RunId | None = None
    """Set on a cache hit: the run whose execution produced the replayed output."""
    cache_key_parts: Mapping[str, ContentHash] | None = None
    """What the cache key is made of (``code``, ``config``, ``version``,
    ``constant:<name>``; inputs are in ``parent_input_hashes``), to explain misses."""

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[Any], handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        """Validate as the named tuple (from a dict or a sequence); serialize as a dict,
        so JSON consumers (history, emitters) see field names."""
        schema = handler(source)
        schema["serialization"] = core_schema.plain_serializer_function_ser_schema(
            lambda rec: rec._asdict()
        )
        return schema

    @property
    def execution_hash(self) -> ContentHash:
        """Config hash and input hashes combined: equal execution hashes mean the same
        code, with the same settings, ran on the same data."""
        return execution_hash(self.knot_config_hash, self.parent_input_hashes)

    @property
    def duration(self) -> float:
        """Seconds from start to finish."""
        return (self.finished_at - self.started_at).total_seconds()


def execution_hash(config_hash: ContentHash, input_hashes: Mapping[str, str]) -> ContentHash:
    """The identity of one execution: its config hash and its inputs' hashes."""
    if not input_hashes:
        return config_hash
    return combine_hashes([config_hash, *(f"{k}={input_hashes[k]}" for k in sorted(input_hashes))])


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """A knot entered ``state`` (``running`` or its final outcome) at ``occurred_at``."""

    run_id: RunId
    knot_id: KnotId
    state: str
    occurred_at: datetime


class RunRecord(BaseModel):
    """A run as kept in history: its identity, status and summary (no values).

    ``exceptions`` holds the run's exception records as ``stored_exceptions`` cuts
    them; records stored before the field existed load with none."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    run_id: str
    status: RunStatus
    started_at: datetime
    finished_at: datetime | None = None
    terminals: list[str] = Field(default_factory=list)
    parameter_hashes: dict[str, str] = Field(default_factory=dict)
    trigger: dict[str, Any] | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    parent_run_id: str | None = None
    parent_knot_id: str | None = None
    knot_count: int = 0
    error_ids: list[str] = Field(default_factory=list)
    pirn_like_version: str = ""
    exceptions: list[ExceptionRecord] = Field(default_factory=list)


def stored_exceptions(records: Sequence[ExceptionRecord]) -> list[ExceptionRecord]:
    """``records`` as a history keeps them: the first ``STORED_EXCEPTIONS``, each
    ``ExceptionRecord.capped``, so a run with many or huge errors stays small."""
    return [rec.capped() for rec in records[:STORED_EXCEPTIONS]]


class RunResult(BaseModel):
    """Everything one run produced.

    ``outputs`` holds the value of every knot that ended ``Ok`` (parameters included,
    as ``param:<name>``); ``results`` the three-way result of every knot.
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, defer_build=True)

    run_id: str
    status: RunStatus
    terminals_requested: list[str]
    outputs: dict[str, Any]
    results: dict[str, Any]
    skipped: list[str]
    exceptions: list[ExceptionRecord]
    lineage: list[KnotLineage]
    started_at: datetime
    finished_at: datetime
    dispatcher: str
    trigger: dict[str, Any] | None = None
    parent_run_id: str | None = None

    @property
    def succeeded(self) -> bool:
        """True when the run finished and no knot failed."""
        return self.status is RunStatus.SUCCEEDED

    @property
    def timings(self) -> dict[str, float]:
        """Seconds each knot took, by knot id."""
        return {rec.knot_id: rec.duration for rec in self.lineage}

    @property
    def status_events(self) -> list[StatusEvent]:
        """Each knot's start and end, in time order."""
        events: list[StatusEvent] = []
        for rec in self.lineage:
            if rec.outcome is not Outcome.SKIPPED:
                events.append(StatusEvent(rec.run_id, rec.knot_id, "running", rec.started_at))
            events.append(StatusEvent(rec.run_id, rec.knot_id, rec.outcome.value, rec.finished_at))
        events.sort(key=lambda e: e.occurred_at)
        return events

    def result(self, knot_id: str) -> Result[Any]:
        """The three-way result of ``knot_id``."""
        return self.results[knot_id]

    def _repr_html_(self) -> str:
        """Jupyter shows a run as its graph, coloured by outcome."""
        # A display hook: the view layer sits above core, so load it only when asked.
        from pirn_like.viz import svg_for_run

        return svg_for_run(self)

    def lineage_for(self, knot_id: str) -> KnotLineage:
        """The lineage record of ``knot_id`` in this run (the latest, after a resume)."""
        for rec in reversed(self.lineage):
            if rec.knot_id == knot_id:
                return rec
        raise KeyError(knot_id)


@dataclass(frozen=True, slots=True)
class CacheMiss:
    """Why a cached knot was executed instead of replayed.

    ``changed`` names what differs from ``previous``, the nearest earlier execution
    of the same knot: ``code``, ``config``, ``version``, ``constant:<name>`` or
    ``input:<name>``. When nothing differs, ``reason`` says why that execution could
    not be reused (``expired``, ``failed``, ``value_gone``), or ``first_execution``
    when there is no earlier one.
    """

    run_id: str
    knot_id: str
    reason: str
    changed: tuple[str, ...]
    previous: KnotLineage | None
    message: str


@dataclass(frozen=True, slots=True)
class RetentionReport:
    """What ``delete_runs_older_than`` removed."""

    deleted_runs: tuple[str, ...]
    deleted_values: tuple[str, ...]
    kept_values: tuple[str, ...]
    """Values the deleted runs produced that lineage kept elsewhere still references."""


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How a triggered request ended, as its trigger is told before acknowledging it.

    ``status`` is the recorded run's status, or None when the request was refused
    before anything ran (``error`` says why: bad parameters, say). ``duplicate`` is
    True when the run had already been recorded (a redelivered message) and was not
    run again; ``result`` is the run's result when it ran in this process.
    """

    run_id: str
    status: RunStatus | None
    result: RunResult | None = None
    error: str | None = None
    duplicate: bool = False

    @property
    def succeeded(self) -> bool:
        """True when the run is recorded as succeeded."""
        return self.status is RunStatus.SUCCEEDED

    @property
    def errors(self) -> list[str]:
        """``Type: message`` of each failure: the refusal, or the run's exceptions."""
        if self.error is not None:
            return [self.error]
        if self.result is None:
            return []
        return [f"{e.type}: {e.message}" for e in self.result.exceptions]
