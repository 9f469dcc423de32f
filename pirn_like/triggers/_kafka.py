"""``KafkaTrigger``: one run per Kafka message, at least once, failures to a dead-letter topic."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any, Self

import anyio

from pirn_like._errors import BackendError, ClosedResourceError
from pirn_like.backends._kafka import (
    BootstrapServers,
    consumer_client_options,
    kafka_client_options,
    require_aiokafka,
    start_client,
)
from pirn_like.core._records import RunOutcome, RunRequest, RunStatus
from pirn_like.protocols import Delivery

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer, ConsumerRecord

    from pirn_like.triggers._kafka_offsets import PartitionOffsets, SettlingConsumer

__all__ = ["KafkaTrigger", "message_run_id"]

_log = logging.getLogger("pirn_like.triggers")

ToRequest = Callable[["ConsumerRecord[bytes, bytes]"], "RunRequest | Mapping[str, Any]"]

_FINISHED = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.TIMED_OUT})
_HEADER_PREFIX = "pirn_like."
_MAX_HEADER_TEXT = 4096


def message_run_id(group_id: str, topic: str, partition: int, offset: int) -> str:
    """The run id of a message: the same every time the group sees that message."""
    digest = hashlib.sha256(f"{group_id}/{topic}/{partition}/{offset}".encode()).hexdigest()
    return f"kafka-{digest[:32]}"


class KafkaTrigger:
    """Starts one run per message of ``topic``, consumed in the group ``group_id``.

    ``to_request`` turns a message (an aiokafka ``ConsumerRecord``) into a
    ``RunRequest`` or a dict of parameters; by default the message is a JSON object
    of parameters. Each run gets a run id derived from (group, topic, partition,
    offset) unless ``to_request`` sets one, and ``request.trigger`` records
    ``kind``, ``source`` (the topic), ``partition``, ``offset``, ``message_id``
    (``topic/partition/offset``), ``key`` and ``group_id``.

    Delivery is at least once: a message's offset is committed only after its run
    is recorded, and per partition only up to the first message not yet settled,
    so concurrent runs never commit past one still in flight. A redelivered
    message whose run is already recorded is not run again (``run_forever``
    matches its run id). A message whose run did not succeed, or that could not
    become a request at all (bad JSON, ``to_request`` raising), is produced to
    ``dead_letter_topic`` (default ``<topic>.dlq``) with its key, value and
    headers plus ``pirn_like.error.type``, ``pirn_like.error.message``,
    ``pirn_like.source.topic``/``partition``/``offset``, ``pirn_like.run.id`` and
    ``pirn_like.run.status``; once the broker has it, the offset moves on. A
    failed run seen again after a crash may be dead-lettered twice.

    Messages are fetched only when ``run_forever`` asks for the next delivery (runs
    longer than five minutes need a larger ``max_poll_interval_ms``, or the group
    takes the partitions away). ``client_options`` go to every aiokafka client
    (security settings, say), ``consumer_options`` to the consumer only
    (``session_timeout_ms``, ``auto_offset_reset``: default ``earliest``).
    asyncio only.
    """

    kind = "kafka"

    def __init__(
        self,
        topic: str,
        *,
        bootstrap_servers: BootstrapServers,
        group_id: str = "pirn-like",
        to_request: ToRequest | None = None,
        dead_letter_topic: str | None = None,
        client_options: Mapping[str, Any] | None = None,
        consumer_options: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(topic, str) or not topic:
            raise ValueError(f"KafkaTrigger needs a topic name, got {topic!r}")
        if to_request is not None and not callable(to_request):
            raise TypeError(f"to_request must be a function of a message, got {to_request!r}")
        self.topic = topic
        self.group_id = group_id
        self.dead_letter_topic = dead_letter_topic or f"{topic}.dlq"
        if self.dead_letter_topic == topic:
            raise ValueError(f"dead_letter_topic must differ from the topic {topic!r}")
        self._to_request = to_request or _parameters_from_json
        shared = dict(client_options or {})
        self._consumer_options = consumer_client_options(
            "KafkaTrigger", bootstrap_servers, shared, consumer_options or {}, group_id
        )
        self._producer_options = kafka_client_options(
            "KafkaTrigger", bootstrap_servers, {"acks": "all", **shared}, {}
        )
        self._servers = bootstrap_servers
        self._consumer: SettlingConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._stack: AsyncExitStack | None = None

    def __repr__(self) -> str:
        return f"KafkaTrigger(topic={self.topic!r}, group_id={self.group_id!r})"

    async def __aenter__(self) -> Self:
        if self._stack is not None:
            raise RuntimeError(f"{self!r} is already open")
        require_aiokafka("KafkaTrigger")
        from aiokafka import AIOKafkaProducer

        from pirn_like.triggers._kafka_offsets import SettlingConsumer

        async with AsyncExitStack() as stack:
            producer = AIOKafkaProducer(**self._producer_options)
            await start_client("KafkaTrigger", producer, self._servers)
            stack.push_async_callback(producer.stop)
            consumer = SettlingConsumer("KafkaTrigger", self.topic, self._consumer_options)
            await stack.enter_async_context(consumer)
            self._producer, self._consumer = producer, consumer
            self._stack = stack.pop_all()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        stack, self._stack = self._stack, None
        self._consumer = self._producer = None
        if stack is not None:
            await stack.aclose()

    async def deliveries(self) -> AsyncIterator[Delivery]:
        """One delivery per message, fetched when asked for. Messages that cannot
        become a request go to the dead-letter topic here and are never yielded."""
        consumer = self._consumer
        if consumer is None:
            raise ClosedResourceError(
                f"{self!r} is not open: use it in 'async with' or run_forever"
            )
        while True:
            record, partition = await consumer.fetch()
            run_id = message_run_id(self.group_id, record.topic, record.partition, record.offset)
            try:
                request = self._request(record, run_id)
            except Exception as exc:  # a poison message: it goes to the dead-letter topic
                _log.warning("%s: message %s is not a run request: %r", self, _where(record), exc)
                # Once dead-lettered the offset must move on, even during shutdown.
                with anyio.CancelScope(shield=True):
                    await self._dead_letter(record, run_id, None, _error_of(exc))
                    await consumer.settle(partition, record.offset)
                continue
            yield _KafkaDelivery(self, request, record, partition)

    def _request(self, record: ConsumerRecord[bytes, bytes], run_id: str) -> RunRequest:
        made = self._to_request(record)
        key = record.key
        trigger: dict[str, Any] = {
            "kind": self.kind,
            "source": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "message_id": _where(record),
            "key": None if key is None else key.decode("utf-8", "backslashreplace"),
            "group_id": self.group_id,
        }
        if isinstance(made, RunRequest):
            return made.model_copy(
                update={
                    "run_id": made.run_id or run_id,
                    "trigger": {**(made.trigger or {}), **trigger},
                }
            )
        if isinstance(made, Mapping):
            return RunRequest(parameters=dict(made), run_id=run_id, trigger=trigger)
        raise TypeError(
            "to_request must return a RunRequest or a dict of parameters, "
            f"got {type(made).__name__}"
        )

    async def _settle(
        self, record: ConsumerRecord[bytes, bytes], partition: PartitionOffsets, outcome: RunOutcome
    ) -> None:
        consumer = self._consumer
        if consumer is None:
            raise ClosedResourceError(f"{self!r} was closed before run {outcome.run_id} settled")
        if outcome.duplicate and outcome.status not in _FINISHED:
            # Another delivery of this message is running it right now (a rebalance):
            # that one settles it; committing here could lose it if this process dies.
            _log.info("%s: run %s is in flight elsewhere; not committing", self, outcome.run_id)
            return
        if not outcome.succeeded:
            await self._dead_letter(record, outcome.run_id, outcome.status, _error_of(outcome))
        await consumer.settle(partition, record.offset)

    async def _dead_letter(
        self,
        record: ConsumerRecord[bytes, bytes],
        run_id: str,
        status: RunStatus | None,
        error: tuple[str, str],
    ) -> None:
        from aiokafka.errors import KafkaError

        producer = self._producer
        if producer is None:
            raise ClosedResourceError(
                f"{self!r} was closed before {_where(record)} was dead-lettered"
            )
        error_type, message = error
        ours = {
            "error.type": error_type,
            "error.message": message[:_MAX_HEADER_TEXT],
            "source.topic": record.topic,
            "source.partition": str(record.partition),
            "source.offset": str(record.offset),
            "run.id": run_id,
            "run.status": "refused" if status is None else status.value,
        }
        headers = [
            *((k, v) for k, v in record.headers if not k.startswith(_HEADER_PREFIX)),
            *((_HEADER_PREFIX + k, v.encode()) for k, v in ours.items()),
        ]
        try:
            await producer.send_and_wait(
                self.dead_letter_topic, value=record.value, key=record.key, headers=headers
            )
        except KafkaError as exc:
            raise BackendError(
                f"{self!r} could not dead-letter {_where(record)} to {self.dead_letter_topic!r} "
                f"(its offset stays uncommitted): {exc!r}"
            ) from exc
        _log.warning(
            "%s: %s dead-lettered to %s (%s: %s)",
            self,
            _where(record),
            self.dead_letter_topic,
            error_type,
            message,
        )


class _KafkaDelivery:
    __slots__ = ("_done", "_partition", "_record", "_trigger", "request")

    def __init__(
        self,
        trigger: KafkaTrigger,
        request: RunRequest,
        record: ConsumerRecord[bytes, bytes],
        partition: PartitionOffsets,
    ) -> None:
        self._trigger = trigger
        self.request = request
        self._record = record
        self._partition = partition
        self._done = False

    async def settle(self, outcome: RunOutcome) -> None:
        self._finish()
        await self._trigger._settle(self._record, self._partition, outcome)

    async def release(self) -> None:
        # The offset stays uncommitted: the message is delivered again after a
        # restart or a rebalance.
        self._finish()

    def _finish(self) -> None:
        if self._done:
            raise RuntimeError(f"message {_where(self._record)} was already settled or released")
        self._done = True


def _parameters_from_json(record: ConsumerRecord[bytes, bytes]) -> Mapping[str, Any]:
    if record.value is None:
        raise ValueError("the message has no value; expected a JSON object of parameters")
    body = json.loads(record.value)
    if not isinstance(body, dict):
        raise ValueError(f"expected a JSON object of parameters, got {type(body).__name__}")
    return body


def _where(record: ConsumerRecord[bytes, bytes]) -> str:
    return f"{record.topic}/{record.partition}/{record.offset}"


def _error_of(failure: Exception | RunOutcome) -> tuple[str, str]:
    """``(type, message)`` of an exception, or of the first error of an outcome."""
    if isinstance(failure, Exception):
        return type(failure).__name__, str(failure)
    result = failure.result
    if result is not None and result.exceptions:
        first = result.exceptions[0]
        return first.type, first.message
    if failure.error is not None:
        kind, _, message = failure.error.partition(": ")
        return kind, message
    status = failure.status.value if failure.status is not None else "refused"
    return "RunNotSucceeded", f"run {failure.run_id} ended {status}"
