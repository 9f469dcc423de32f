"""OpenTelemetryEmitter: spans per run and knot, checked with the SDK's in-memory exporter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from pirn_like import (
    KnotConfig,
    OpenTelemetryEmitter,
    Parameter,
    RunRequest,
    SubTapestry,
    Tapestry,
    knot,
)

pytestmark = pytest.mark.anyio

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@knot
async def double(x: int) -> int:
    return x * 2


@knot
async def explode(x: int) -> int:
    raise ValueError(f"cannot take {x}")


def traced() -> tuple[OpenTelemetryEmitter, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return OpenTelemetryEmitter(tracer_provider=provider), exporter


def by_name(spans: tuple[ReadableSpan, ...]) -> dict[str, ReadableSpan]:
    return {span.name: span for span in spans}


async def test_a_run_span_parents_a_span_per_knot_with_lineage_attributes() -> None:
    emitter, exporter = traced()
    async with Tapestry(emitters=[emitter]) as t:
        x = Parameter("x", int)
        d = double(x=x, _config=KnotConfig(id="d"))
        double(x=d, _config=KnotConfig(id="dd"))
        result = await t.run(RunRequest(parameters={"x": 3}, trigger={"kind": "test"}))
        assert await t.flush_emitters()
    spans = by_name(exporter.get_finished_spans())
    assert set(spans) == {"pirn_like.run", "knot param:x", "knot d", "knot dd"}
    run_span = spans["pirn_like.run"]
    assert run_span.parent is None
    assert run_span.attributes is not None
    assert run_span.attributes["pirn_like.run_id"] == result.run_id
    assert run_span.attributes["pirn_like.status"] == "succeeded"
    assert run_span.attributes["pirn_like.trigger"] == "test"
    assert run_span.status.status_code is StatusCode.OK
    assert run_span.context is not None
    for knot_id in ("param:x", "d", "dd"):
        span = spans[f"knot {knot_id}"]
        assert span.parent is not None
        assert span.parent.span_id == run_span.context.span_id
        assert span.context is not None
        assert span.context.trace_id == run_span.context.trace_id
        rec = result.lineage_for(knot_id)
        attrs = span.attributes
        assert attrs is not None
        assert attrs["pirn_like.knot_id"] == knot_id
        assert attrs["pirn_like.knot_class"] == rec.knot_class
        assert attrs["pirn_like.config_hash"] == rec.knot_config_hash
        assert attrs["pirn_like.output_hash"] == rec.output_hash
        assert attrs["pirn_like.outcome"] == "ok"
        assert attrs["pirn_like.attempts"] == rec.attempts
        assert attrs["pirn_like.dispatcher"] == rec.dispatcher
        # Span times are the lineage record's, to the microsecond.
        assert span.start_time is not None
        assert span.end_time is not None
        assert span.start_time // 1000 == (rec.started_at - EPOCH) // timedelta(microseconds=1)
        assert span.end_time // 1000 == (rec.finished_at - EPOCH) // timedelta(microseconds=1)
    assert spans["knot dd"].attributes is not None
    assert (
        spans["knot dd"].attributes["pirn_like.input_hash.x"] == result.lineage_for("d").output_hash
    )


async def test_a_failed_knot_and_its_run_get_an_error_status() -> None:
    emitter, exporter = traced()
    async with Tapestry(emitters=[emitter]) as t:
        x = Parameter("x", int)
        explode(x=x, _config=KnotConfig(id="boom"))
        result = await t.run(RunRequest(parameters={"x": 1}))
        assert await t.flush_emitters()
    assert not result.succeeded
    spans = by_name(exporter.get_finished_spans())
    boom = spans["knot boom"]
    assert boom.status.status_code is StatusCode.ERROR
    assert boom.attributes is not None
    assert boom.attributes["pirn_like.outcome"] == "err"
    assert boom.attributes["pirn_like.error_id"] == result.exceptions[0].id
    run_span = spans["pirn_like.run"]
    assert run_span.status.status_code is StatusCode.ERROR
    assert "boom" in (run_span.status.description or "")
    (exception,) = run_span.events
    assert exception.attributes is not None
    assert exception.attributes["exception.message"] == "cannot take 1"
    assert spans["knot param:x"].status.status_code is StatusCode.UNSET


async def test_a_nested_run_is_a_child_of_its_parent_run() -> None:
    emitter, exporter = traced()

    class Inner(SubTapestry):
        async def process(self, x: int, **_: object) -> object:
            return double(x=x, _config=KnotConfig(id="inner"))

    async with Tapestry(emitters=[emitter]) as t:
        x = Parameter("x", int)
        Inner(x=x, _config=KnotConfig(id="sub"))
        result = await t.run(RunRequest(parameters={"x": 2}))
        assert await t.flush_emitters()
    assert result.succeeded
    spans = exporter.get_finished_spans()
    runs = [s for s in spans if s.name == "pirn_like.run"]
    assert len(runs) == 2
    outer = next(s for s in runs if s.parent is None)
    inner = next(s for s in runs if s.parent is not None)
    assert outer.context is not None
    assert inner.parent is not None
    assert inner.parent.span_id == outer.context.span_id
    assert inner.attributes is not None
    assert inner.attributes["pirn_like.parent_knot_id"] == "sub"


async def test_a_traceparent_in_the_trigger_joins_the_callers_trace() -> None:
    emitter, exporter = traced()
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    async with Tapestry(emitters=[emitter]) as t:
        Parameter("x", int, default=1)
        await t.run(RunRequest(trigger={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"}))
        assert await t.flush_emitters()
    run_span = by_name(exporter.get_finished_spans())["pirn_like.run"]
    assert run_span.context is not None
    assert f"{run_span.context.trace_id:032x}" == trace_id
    assert run_span.parent is not None
    assert run_span.parent.span_id == 0x00F067AA0BA902B7
