"""Run events as flat, JSON-ready fields: what log records and bus messages carry."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic_core import to_jsonable_python

from pirn_like.core._events import KnotFinished, KnotStarted, RunEvent, RunFinished, RunStarted

__all__ = ["event_fields", "event_kind", "event_run_id", "jsonable"]

_KINDS: Mapping[type, str] = {
    RunStarted: "run_started",
    KnotStarted: "knot_started",
    KnotFinished: "knot_finished",
    RunFinished: "run_finished",
}


def event_kind(event: RunEvent) -> str:
    """``run_started``, ``knot_started``, ``knot_finished`` or ``run_finished``."""
    return _KINDS[type(event)]


def event_run_id(event: RunEvent) -> str:
    """The id of the run ``event`` belongs to."""
    match event:
        case RunStarted(run=record):
            return record.run_id
        case KnotStarted(run_id=run_id):
            return run_id
        case KnotFinished(lineage=lineage):
            return lineage.run_id
        case RunFinished(result=result):
            return result.run_id


def event_fields(event: RunEvent, *, with_payload: bool = False) -> dict[str, Any]:
    """The event's identity, outcome, hashes and durations as JSON-ready fields.

    Values (a knot's output, a run's outputs) are included only ``with_payload``;
    values JSON cannot carry are given as their ``repr``.
    """
    fields: dict[str, Any] = {"event": event_kind(event), "run_id": event_run_id(event)}
    match event:
        case RunStarted(run=record):
            fields.update(
                status=record.status.value,
                started_at=_iso(record.started_at),
                terminals=list(record.terminals),
                parameter_hashes=dict(record.parameter_hashes),
                trigger=jsonable(record.trigger),
                labels=dict(record.labels),
                parent_run_id=record.parent_run_id,
                parent_knot_id=record.parent_knot_id,
            )
        case KnotStarted(knot_id=knot_id, occurred_at=occurred_at):
            fields.update(knot_id=knot_id, started_at=_iso(occurred_at))
        case KnotFinished(lineage=rec, value=value):
            fields.update(
                knot_id=rec.knot_id,
                knot_class=rec.knot_class,
                outcome=rec.outcome.value,
                started_at=_iso(rec.started_at),
                finished_at=_iso(rec.finished_at),
                duration_s=rec.duration,
                attempts=rec.attempts,
                dispatcher=rec.dispatcher,
                config_hash=rec.knot_config_hash,
                input_hashes=dict(rec.parent_input_hashes),
                output_hash=rec.output_hash,
                skip_reason=rec.skip_reason.value if rec.skip_reason is not None else None,
                error_id=rec.error_record_id,
                cached_from=rec.cached_from,
            )
            if with_payload:
                fields["value"] = jsonable(value)
        case RunFinished(result=result):
            fields.update(
                status=result.status.value,
                started_at=_iso(result.started_at),
                finished_at=_iso(result.finished_at),
                duration_s=(result.finished_at - result.started_at).total_seconds(),
                knot_count=len(result.lineage),
                skipped=list(result.skipped),
                errors=[
                    {"id": e.id, "knot_id": e.knot_id, "type": e.type, "message": e.message}
                    for e in result.exceptions
                ],
                trigger=jsonable(result.trigger),
                parent_run_id=result.parent_run_id,
            )
            if with_payload:
                fields["outputs"] = jsonable(result.outputs)
    return fields


def jsonable(value: object) -> Any:
    """``value`` as JSON-ready data; what JSON cannot carry becomes its ``repr``."""
    return to_jsonable_python(value, fallback=repr)


def _iso(moment: datetime) -> str:
    return moment.isoformat()
