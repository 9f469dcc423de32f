"""Events a run emits to its emitters, as immutable records."""

from dataclasses import dataclass
from datetime import datetime
from typing import TypeAlias

from pirn_like._ids import KnotId, RunId
from pirn_like.core._records import KnotLineage, RunRecord, RunResult

__all__ = ["KnotFinished", "KnotStarted", "RunEvent", "RunFinished", "RunStarted"]


@dataclass(frozen=True, slots=True)
class RunStarted:
    """A run began."""

    run: RunRecord


@dataclass(frozen=True, slots=True)
class KnotStarted:
    """A knot's parents settled and the engine took it up.

    It may still wait for a concurrency limit, or end skipped without running.
    """

    run_id: RunId
    knot_id: KnotId
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class KnotFinished:
    """A knot execution ended; ``lineage`` says how, ``value`` is its output when Ok."""

    lineage: KnotLineage
    value: object


@dataclass(frozen=True, slots=True)
class RunFinished:
    """A run ended."""

    result: RunResult


RunEvent: TypeAlias = RunStarted | KnotStarted | KnotFinished | RunFinished
