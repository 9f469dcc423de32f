"""``KafkaEmitter``: status events, lineage records and run results as JSON on Kafka."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Self

from pirn_like._errors import ClosedResourceError
from pirn_like.backends._kafka import (
    BootstrapServers,
    kafka_client_options,
    require_aiokafka,
    start_client,
)
from pirn_like.core._events import KnotFinished, RunEvent, RunFinished
from pirn_like.core._records import KnotLineage
from pirn_like.emitters._fields import event_fields, event_run_id, jsonable

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer

__all__ = ["KafkaEmitter"]

_log = logging.getLogger("pirn_like.emitters")


class KafkaEmitter:
    """Publishes what runs do, as JSON messages keyed by run id (one run, one partition).

    - ``topic_status``: every event (``run_started``, ``knot_started``,
      ``knot_finished`` with its outcome, ``run_finished`` with the run's status) with
      the fields ``LogEmitter`` logs: ``event``, ``run_id``, ``knot_id``, times,
      hashes, errors.
    - ``topic_lineage``: one lineage record per knot execution, its fields as in
      ``KnotLineage`` (config, input and output hashes, outcome, times, attempts)
      plus ``execution_hash``.
    - ``topic_result``: one message per run: the ``run_finished`` fields (status,
      times, ``skipped``, ``errors``, ``trigger``) plus ``output_hashes`` (knot id ->
      content hash). The values themselves are included (as ``outputs``, ``repr``
      for what JSON cannot hold) only with ``with_payload=True``.

    A topic left ``None`` is not published to. Messages are handed to the producer
    without waiting for the broker; a message the broker refuses is logged. The
    producer starts when the emitter opens and is flushed and closed when it
    closes. ``client_options`` go to the aiokafka producer. asyncio only.
    """

    def __init__(
        self,
        *,
        bootstrap_servers: BootstrapServers,
        topic_status: str | None = None,
        topic_lineage: str | None = None,
        topic_result: str | None = None,
        with_payload: bool = False,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        topics = {
            "topic_status": topic_status,
            "topic_lineage": topic_lineage,
            "topic_result": topic_result,
        }
        if all(t is None for t in topics.values()):
            raise ValueError(f"KafkaEmitter needs at least one of {', '.join(topics)}")
        for name, topic in topics.items():
            if topic is not None and (not isinstance(topic, str) or not topic):
                raise ValueError(
                    f"KafkaEmitter: {name} must be a topic name or None, got {topic!r}"
                )
        self.topic_status = topic_status
        self.topic_lineage = topic_lineage
        self.topic_result = topic_result
        self.with_payload = with_payload
        self._servers = bootstrap_servers
        self._options = kafka_client_options(
            "KafkaEmitter", bootstrap_servers, client_options or {}, {}
        )
        self._producer: AIOKafkaProducer | None = None

    def __repr__(self) -> str:
        topics = (self.topic_status, self.topic_lineage, self.topic_result)
        return f"KafkaEmitter(topics={[t for t in topics if t is not None]})"

    async def __aenter__(self) -> Self:
        if self._producer is not None:
            raise RuntimeError(f"{self!r} is already open")
        require_aiokafka("KafkaEmitter")
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(**self._options)
        self._producer = await start_client("KafkaEmitter", producer, self._servers)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        producer, self._producer = self._producer, None
        if producer is None:
            return
        try:
            await producer.flush()
        finally:
            await producer.stop()

    async def emit(self, event: RunEvent) -> None:
        """Queue the messages ``event`` makes for their topics."""
        producer = self._producer
        if producer is None:
            raise ClosedResourceError(f"{self!r} is not open: pass it to Tapestry(emitters=...)")
        for topic, run_id, body in self._messages(event):
            value = json.dumps(body, separators=(",", ":")).encode()
            delivery = await producer.send(topic, value, key=run_id.encode())
            delivery.add_done_callback(_log_refusal(topic, run_id))

    def _messages(self, event: RunEvent) -> list[tuple[str, str, object]]:
        run_id = event_run_id(event)
        out: list[tuple[str, str, object]] = []
        if self.topic_status is not None:
            out.append((self.topic_status, run_id, event_fields(event)))
        if self.topic_lineage is not None and isinstance(event, KnotFinished):
            rec = event.lineage
            out.append((self.topic_lineage, run_id, _lineage(rec)))
        if self.topic_result is not None and isinstance(event, RunFinished):
            out.append((self.topic_result, run_id, _result(event, self.with_payload)))
        return out


def _lineage(rec: KnotLineage) -> dict[str, object]:
    return {**jsonable(rec._asdict()), "execution_hash": rec.execution_hash}


def _result(event: RunFinished, with_payload: bool) -> dict[str, object]:
    lineage = event.result.lineage
    return {
        **event_fields(event, with_payload=with_payload),
        "output_hashes": {r.knot_id: r.output_hash for r in lineage if r.output_hash},
    }


def _log_refusal(topic: str, run_id: str) -> Callable[[asyncio.Future[Any]], None]:
    def check(delivery: asyncio.Future[Any]) -> None:
        if not delivery.cancelled() and delivery.exception() is not None:
            _log.error(
                "KafkaEmitter: %s message for run %s was not delivered: %r",
                topic,
                run_id,
                delivery.exception(),
            )

    return check
