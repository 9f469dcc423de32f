"""OpenTelemetry traces of runs: a span per run, with a child span per knot."""

from __future__ import annotations

from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Self

from pirn_like._errors import MissingExtraError
from pirn_like._version import __version__
from pirn_like.core._events import KnotFinished, RunEvent, RunFinished, RunStarted
from pirn_like.core._records import KnotLineage, RunRecord, RunResult, RunStatus
from pirn_like.core._results import Outcome

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer, TracerProvider

__all__ = ["OpenTelemetryEmitter"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_OPEN_RUNS = 10_000
"""Run spans kept open at once; a run whose end never comes (cancelled, or its
``RunFinished`` dropped) is ended when this many newer runs are open."""


class OpenTelemetryEmitter:
    """A span per run (``pirn_like.run``) and per knot execution (``knot <id>``).

    Knot spans are children of their run's span, and the run span of a nested run
    (``SubTapestry``) is a child of its parent run's. Spans carry the lineage record's
    start and finish times and its identity as attributes (``pirn_like.run_id``,
    ``pirn_like.knot_id``, ``pirn_like.knot_class``, ``pirn_like.config_hash``,
    ``pirn_like.input_hash.<name>``, ``pirn_like.output_hash``, ``pirn_like.outcome``,
    ``pirn_like.attempts``, ``pirn_like.dispatcher``); a knot that ended ``Err`` and
    a run that failed get an error status. A run whose ``RunRequest.trigger`` has a
    W3C ``traceparent`` joins that trace.

    ``tracer_provider`` defaults to the global one (``opentelemetry.trace``).
    """

    def __init__(self, tracer_provider: TracerProvider | None = None) -> None:
        self._provider = tracer_provider
        self._tracer: Tracer | None = None
        self._runs: OrderedDict[str, Span] = OrderedDict()

    async def __aenter__(self) -> Self:
        try:
            from opentelemetry import trace
        except ImportError as exc:
            raise MissingExtraError("OpenTelemetryEmitter", "otel", "opentelemetry-api") from exc
        provider = self._provider if self._provider is not None else trace.get_tracer_provider()
        self._tracer = provider.get_tracer("pirn_like", __version__)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        # Spans of runs that never finished are ended, marked as such, so none leaks.
        while self._runs:
            _, span = self._runs.popitem(last=False)
            span.set_attribute("pirn_like.unfinished", True)
            span.end()

    async def emit(self, event: RunEvent) -> None:
        """Open a run span on ``RunStarted``; record a knot span on ``KnotFinished``;
        end the run span on ``RunFinished``."""
        match event:
            case RunStarted(run=record):
                self._open_run(record)
            case KnotFinished(lineage=rec):
                self._record_knot(rec)
            case RunFinished(result=result):
                self._end_run(result)
            case _:
                pass

    @property
    def tracer(self) -> Tracer:
        if self._tracer is None:
            raise RuntimeError(
                "OpenTelemetryEmitter is not open: use it in Tapestry(emitters=[...])"
            )
        return self._tracer

    def _open_run(self, record: RunRecord) -> Span:
        from opentelemetry import trace

        parent = self._runs.get(record.parent_run_id) if record.parent_run_id else None
        context = trace.set_span_in_context(parent) if parent is not None else None
        if context is None and record.trigger and "traceparent" in record.trigger:
            from opentelemetry.trace.propagation.tracecontext import (
                TraceContextTextMapPropagator,
            )

            carrier = {"traceparent": str(record.trigger["traceparent"])}
            context = TraceContextTextMapPropagator().extract(carrier)
        attributes: dict[str, Any] = {
            "pirn_like.run_id": record.run_id,
            "pirn_like.terminals": list(record.terminals),
        }
        if record.parent_run_id:
            attributes["pirn_like.parent_run_id"] = record.parent_run_id
        if record.parent_knot_id:
            attributes["pirn_like.parent_knot_id"] = record.parent_knot_id
        if record.trigger and record.trigger.get("kind"):
            attributes["pirn_like.trigger"] = str(record.trigger["kind"])
        for name, content_hash in record.parameter_hashes.items():
            attributes[f"pirn_like.parameter_hash.{name}"] = content_hash
        for key, value in record.labels.items():
            attributes[f"pirn_like.label.{key}"] = value
        span = self.tracer.start_span(
            "pirn_like.run",
            context=context,
            attributes=attributes,
            start_time=_ns(record.started_at),
        )
        self._runs[record.run_id] = span
        while len(self._runs) > _MAX_OPEN_RUNS:
            _, oldest = self._runs.popitem(last=False)
            oldest.set_attribute("pirn_like.unfinished", True)
            oldest.end()
        return span

    def _record_knot(self, rec: KnotLineage) -> None:
        from opentelemetry import trace
        from opentelemetry.trace import Status, StatusCode

        run_span = self._runs.get(rec.run_id)
        attributes: dict[str, Any] = {
            "pirn_like.run_id": rec.run_id,
            "pirn_like.knot_id": rec.knot_id,
            "pirn_like.knot_class": rec.knot_class,
            "pirn_like.config_hash": rec.knot_config_hash,
            "pirn_like.outcome": rec.outcome.value,
            "pirn_like.attempts": rec.attempts,
            "pirn_like.dispatcher": rec.dispatcher,
        }
        for name, content_hash in rec.parent_input_hashes.items():
            attributes[f"pirn_like.input_hash.{name}"] = content_hash
        optional = {
            "pirn_like.output_hash": rec.output_hash,
            "pirn_like.skip_reason": rec.skip_reason.value if rec.skip_reason else None,
            "pirn_like.error_id": rec.error_record_id,
            "pirn_like.cached_from": rec.cached_from,
        }
        attributes.update({k: v for k, v in optional.items() if v is not None})
        span = self.tracer.start_span(
            f"knot {rec.knot_id}",
            context=trace.set_span_in_context(run_span) if run_span is not None else None,
            attributes=attributes,
            start_time=_ns(rec.started_at),
        )
        if rec.outcome is Outcome.ERR:
            span.set_status(Status(StatusCode.ERROR, f"error {rec.error_record_id}"))
        elif rec.outcome is Outcome.CANCELLED:
            span.set_status(Status(StatusCode.ERROR, "cancelled"))
        span.end(end_time=_ns(rec.finished_at))

    def _end_run(self, result: RunResult) -> None:
        from opentelemetry.trace import Status, StatusCode

        span = self._runs.pop(result.run_id, None)
        if span is None:  # its RunStarted was dropped: the span starts late, but exists
            span = self.tracer.start_span(
                "pirn_like.run",
                attributes={"pirn_like.run_id": result.run_id},
                start_time=_ns(result.started_at),
            )
        span.set_attribute("pirn_like.status", result.status.value)
        span.set_attribute("pirn_like.knot_count", len(result.lineage))
        for exc in result.exceptions:
            span.add_event(
                "exception",
                {
                    "exception.type": exc.type,
                    "exception.message": exc.message,
                    "pirn_like.knot_id": exc.knot_id or "",
                    "pirn_like.error_id": exc.id,
                },
            )
        if result.status is not RunStatus.SUCCEEDED:
            failed = [e.knot_id for e in result.exceptions if e.knot_id]
            detail = f"run {result.status.value}" + (f": knots {failed} failed" if failed else "")
            span.set_status(Status(StatusCode.ERROR, detail))
        else:
            span.set_status(Status(StatusCode.OK))
        span.end(end_time=_ns(result.finished_at))


def _ns(moment: datetime) -> int:
    """Nanoseconds since the epoch, exactly (a float timestamp loses microseconds)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000
