"""Prometheus metrics of a ``run_forever`` service (the ``metrics`` extra)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from pirn_like._errors import MissingExtraError
from pirn_like.core._records import RunOutcome
from pirn_like.core._results import Outcome

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric

__all__ = ["ServiceMetrics"]


class ServiceMetrics:
    """Runs, their durations and outcomes, knot durations, failures and retries, and
    each emitter's queue (``watch_emitters``).

    Each service has its own registry, served over HTTP by ``serve``.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        try:
            from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise MissingExtraError("service metrics", "metrics", "prometheus_client") from exc
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.runs = Counter(
            "pirn_like_runs",
            "Runs ended, by trigger and status.",
            ["trigger", "status"],
            registry=r,
        )
        self.duplicates = Counter(
            "pirn_like_duplicate_deliveries",
            "Deliveries settled without running: their run was already recorded.",
            ["trigger"],
            registry=r,
        )
        self.in_flight = Gauge(
            "pirn_like_runs_in_flight", "Runs in progress, by trigger.", ["trigger"], registry=r
        )
        self.run_seconds = Histogram(
            "pirn_like_run_duration_seconds", "Run durations.", ["trigger"], registry=r
        )
        self.knot_seconds = Histogram(
            "pirn_like_knot_duration_seconds", "Knot execution durations.", ["knot"], registry=r
        )
        self.knot_failures = Counter(
            "pirn_like_knot_failures", "Knot executions that ended Err.", ["knot"], registry=r
        )
        self.knot_retries = Counter(
            "pirn_like_knot_retries", "Attempts beyond each knot's first.", ["knot"], registry=r
        )
        self._server: Any = None

    def watch_emitters(self, stats: Callable[[], Iterable[EmitterQueue]]) -> None:
        """Export the emitter queues ``stats()`` describes (``Tapestry.emitter_stats``),
        read at each scrape: ``pirn_like_emitter_queue_depth`` and ``_capacity``
        (gauges), ``pirn_like_emitter_events_dropped``, ``_delivered``, ``_failed`` and
        ``_timed_out`` (counters), each labelled ``emitter``."""
        self.registry.register(_EmitterCollector(stats))

    @classmethod
    def serve(cls, host: str, port: int) -> ServiceMetrics:
        """Metrics served at ``http://host:port/metrics`` until ``close``."""
        from prometheus_client import start_http_server

        metrics = cls()
        metrics._server, _ = start_http_server(port, addr=host, registry=metrics.registry)
        return metrics

    @property
    def port(self) -> int:
        """The port the metrics are served on."""
        return int(self._server.server_port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def run_started(self, trigger: str) -> None:
        self.in_flight.labels(trigger).inc()

    def run_left(self, trigger: str) -> None:
        self.in_flight.labels(trigger).dec()

    def run_ended(self, trigger: str, outcome: RunOutcome) -> None:
        status = outcome.status.value if outcome.status is not None else "refused"
        self.runs.labels(trigger, status).inc()
        if outcome.duplicate:
            self.duplicates.labels(trigger).inc()
        result = outcome.result
        if result is None:
            return
        self.run_seconds.labels(trigger).observe(
            (result.finished_at - result.started_at).total_seconds()
        )
        for rec in result.lineage:
            # A map's items (``owner[3]``) count under their map: one series per knot,
            # not one per item (knot ids themselves cannot contain "[").
            knot = rec.knot_id.partition("[")[0]
            self.knot_seconds.labels(knot).observe(rec.duration)
            if rec.outcome is Outcome.ERR:
                self.knot_failures.labels(knot).inc()
            if rec.attempts > 1:
                self.knot_retries.labels(knot).inc(rec.attempts - 1)


class EmitterQueue(Protocol):
    """What the metrics read of one emitter's queue (``EmitterStats``)."""

    @property
    def name(self) -> str: ...
    @property
    def queued(self) -> int: ...
    @property
    def capacity(self) -> int: ...
    @property
    def delivered(self) -> int: ...
    @property
    def failed(self) -> int: ...
    @property
    def timed_out(self) -> int: ...
    @property
    def dropped(self) -> int: ...


class _EmitterCollector:
    """Reads the emitter queues when Prometheus scrapes (from the server's thread:
    the numbers are plain ints, read without locks)."""

    def __init__(self, stats: Callable[[], Iterable[EmitterQueue]]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily

        label = ["emitter"]
        depth = GaugeMetricFamily(
            "pirn_like_emitter_queue_depth", "Events waiting in each emitter's queue.", labels=label
        )
        capacity = GaugeMetricFamily(
            "pirn_like_emitter_queue_capacity", "Events each emitter's queue holds.", labels=label
        )
        counters = {
            "dropped": CounterMetricFamily(
                "pirn_like_emitter_events_dropped",
                "Events an emitter did not get: its queue was full (or it was closed).",
                labels=label,
            ),
            "delivered": CounterMetricFamily(
                "pirn_like_emitter_events_delivered", "Events emitters took.", labels=label
            ),
            "failed": CounterMetricFamily(
                "pirn_like_emitter_events_failed", "Events an emitter raised on.", labels=label
            ),
            "timed_out": CounterMetricFamily(
                "pirn_like_emitter_events_timed_out",
                "Events abandoned because an emitter took too long.",
                labels=label,
            ),
        }
        for queue in self._stats():
            depth.add_metric([queue.name], queue.queued)
            capacity.add_metric([queue.name], queue.capacity)
            for field, family in counters.items():
                family.add_metric([queue.name], getattr(queue, field))
        yield depth
        yield capacity
        yield from counters.values()
