"""``ValKeyTrigger``: runs from ValKey (or Redis) pub/sub messages or stream entries."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Self, cast

import anyio

from pirn_like._errors import ClosedResourceError, MissingExtraError
from pirn_like.backends._closing import closing_on_error
from pirn_like.backends._url import redact
from pirn_like.backends._valkey import ValKeyServer, parse_valkey_url
from pirn_like.core._records import RunOutcome, RunRequest

if TYPE_CHECKING:
    from glide import GlideClient, TEncodable

__all__ = ["MessageParameters", "ValKeyMessage", "ValKeyTrigger"]

_log = logging.getLogger("pirn_like.triggers")


@dataclass(frozen=True, slots=True)
class ValKeyMessage:
    """What a ``ValKeyTrigger`` received: a stream entry or a pub/sub message."""

    source: str
    """The stream or channel it came from."""
    id: str | None = None
    """The stream entry's id; None for a pub/sub message."""
    fields: Mapping[str, str] = field(default_factory=dict[str, str])
    """The stream entry's fields; empty for a pub/sub message."""
    payload: str | None = None
    """The pub/sub message; None for a stream entry."""


MessageParameters = Callable[[ValKeyMessage], Mapping[str, object]]


def default_parameters(message: ValKeyMessage) -> Mapping[str, object]:
    """A stream entry's fields, or a pub/sub message's JSON object, as the parameters."""
    if message.payload is None:
        return message.fields
    decoded = json.loads(message.payload)
    if not isinstance(decoded, dict):
        raise ValueError(
            f"the message on {message.source!r} is not a JSON object of parameters; "
            "pass parameters= to map messages to parameters"
        )
    return cast(dict[str, object], decoded)


class ValKeyTrigger:
    """Starts a run for each message on a pub/sub ``channel`` or entry of a ``stream``.

    ``url`` is ``valkey://[user[:password]@]host[:port][/db]`` (``redis://`` means the
    same; ``valkeys://``, ``rediss://`` use TLS). ``parameters`` maps a
    ``ValKeyMessage`` to the run's parameters; by default a stream entry's fields are
    the parameters (strings, which the parameters' types coerce) and a pub/sub message
    must be a JSON object of them.

    **Pub/sub is at most once**: a message published while no trigger is subscribed,
    or received by a service that stops before its run ends, is gone. Messages that
    arrive while the service is full wait in the client's memory. Their runs get
    fresh run ids.

    **Streams are at least once**: entries are read through the consumer group
    ``group`` (created at ``start`` when missing: ``"0"`` takes the whole stream,
    ``"$"`` only entries added from then on) as ``consumer`` (default: host name and
    process id; give a stable name so a restarted service takes its own unfinished
    entries back at once). An entry is acknowledged (``XACK``) only once its run is
    recorded; one whose run did not succeed (failed, timed out, or refused: bad
    parameters) is first added to ``dead_letter_stream`` when one is given, with its
    fields and ``pirn_like.error``, ``pirn_like.run_id``, ``pirn_like.status``,
    ``pirn_like.source`` and ``pirn_like.message_id``. On start, and every
    ``min_idle`` seconds, the trigger claims (``XAUTOCLAIM``) entries other consumers
    left pending for longer than ``min_idle`` seconds: a consumer that crashed. Each
    entry's run id is derived from stream, group and entry id, so an entry delivered
    again after its run was recorded is acknowledged without running again; keep
    ``min_idle`` above the longest run, or a slow run's entry is taken over while it
    runs. ``block`` bounds each wait for new entries (seconds), ``timeout`` each
    other request. Works on asyncio and trio.
    """

    kind = "valkey"

    def __init__(
        self,
        url: str,
        *,
        channel: str | None = None,
        stream: str | None = None,
        group: str = "pirn_like",
        consumer: str | None = None,
        parameters: MessageParameters | None = None,
        dead_letter_stream: str | None = None,
        min_idle: float = 60.0,
        start: str = "0",
        block: float = 1.0,
        timeout: float = 10.0,
    ) -> None:
        if (channel is None) == (stream is None):
            raise ValueError("ValKeyTrigger needs exactly one of channel= (pub/sub) or stream=")
        if not min_idle >= 0:
            raise ValueError(f"min_idle must be a number of seconds >= 0, not {min_idle!r}")
        if not block > 0:
            raise ValueError(f"block must be a positive number of seconds, not {block!r}")
        self._server = ValKeyServer(**parse_valkey_url(url), timeout=timeout)
        self._channel = channel
        self._stream = stream
        self._group = group
        self._consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self._parameters = parameters or default_parameters
        self._dead_letter_stream = dead_letter_stream
        self._min_idle_ms = round(min_idle * 1000)
        self._start = start
        self._block_ms = max(1, round(block * 1000))
        self._client: GlideClient | None = None
        self._listener: GlideClient | None = None  # blocking reads or subscriptions
        self._in_flight: set[str] = set()

    @property
    def source(self) -> str:
        """``stream:<name>`` or ``channel:<name>``, as recorded in each run's trigger."""
        return f"stream:{self._stream}" if self._stream is not None else f"channel:{self._channel}"

    def __repr__(self) -> str:
        return f"ValKeyTrigger({redact(self._server.url)!r}, {self.source})"

    async def __aenter__(self) -> Self:
        try:
            import glide
        except ImportError as exc:
            raise MissingExtraError("ValKeyTrigger", "valkey", "valkey-glide") from exc
        subscriptions = None
        if self._channel is not None:
            modes = glide.GlideClientConfiguration.PubSubChannelModes
            subscriptions = glide.GlideClientConfiguration.PubSubSubscriptions(
                channels_and_patterns={modes.Exact: {self._channel}}, callback=None, context=None
            )
        # Two clients: a blocking read or a subscription holds its connection.
        listener = await glide.GlideClient.create(self._server.client_config(subscriptions))
        async with closing_on_error(listener.close):
            client = await glide.GlideClient.create(self._server.client_config())
            async with closing_on_error(client.close):
                if self._stream is not None:
                    await self._create_group(client, self._stream)
        self._listener, self._client = listener, client
        return self

    async def _create_group(self, client: GlideClient, stream: str) -> None:
        from glide import RequestError, StreamGroupOptions

        options = StreamGroupOptions(make_stream=True)
        try:
            await client.xgroup_create(stream, self._group, self._start, options)
        except RequestError as exc:
            if "BUSYGROUP" not in str(exc):  # BUSYGROUP: it exists already, which is fine
                raise

    async def __aexit__(self, *exc_info: object) -> None:
        listener, client, self._listener, self._client = self._listener, self._client, None, None
        try:
            if listener is not None:
                await listener.close()
        finally:
            if client is not None:
                await client.close()

    def deliveries(self) -> AsyncIterator[_Delivery]:
        """One delivery per message or entry, each as ``run_forever`` has room for it."""
        if self._listener is None or self._client is None:
            raise ClosedResourceError(f"{self!r} is not open: run_forever opens it")
        if self._stream is not None:
            return self._entries(self._listener, self._client, self._stream)
        return self._messages(self._listener)

    # -- pub/sub -------------------------------------------------------------------

    async def _messages(self, subscriber: GlideClient) -> AsyncIterator[_Delivery]:
        while True:
            received = await subscriber.get_pubsub_message()
            message = ValKeyMessage(source=_text(received.channel), payload=_text(received.message))
            delivery = await self._delivery(message, run_id=None)
            if delivery is not None:
                yield delivery

    # -- streams -------------------------------------------------------------------

    async def _entries(
        self, reader: GlideClient, client: GlideClient, stream: str
    ) -> AsyncIterator[_Delivery]:
        # Entries this consumer read in an earlier life and never acknowledged.
        after = "0"
        while (read := await self._read(reader, stream, after)) is not None:
            after, entry = read
            if (delivery := await self._entry_delivery(entry)) is not None:
                yield delivery
        next_claim = anyio.current_time()
        while True:
            if anyio.current_time() >= next_claim:
                async for entry in self._claim(client, stream):
                    if (delivery := await self._entry_delivery(entry)) is not None:
                        yield delivery
                next_claim = anyio.current_time() + self._min_idle_ms / 1000
            # Cancelled while blocked (shutdown), this read may still hand the server's
            # next entry to this consumer: it stays pending and is read back on restart.
            read = await self._read(reader, stream, ">")
            if read is not None and (delivery := await self._entry_delivery(read[1])):
                yield delivery

    async def _read(
        self, reader: GlideClient, stream: str, after: str
    ) -> tuple[str, ValKeyMessage | None] | None:
        """The next entry's id and the entry: a new one (``after=">"``, waiting up to
        ``block``) or this consumer's own pending one after ``after``. A pending entry
        deleted from the stream meanwhile is acknowledged and comes back as None."""
        from glide import StreamReadGroupOptions

        block = self._block_ms if after == ">" else None
        options = StreamReadGroupOptions(block_ms=block, count=1)
        found = await reader.xreadgroup({stream: after}, self._group, self._consumer, options)
        for entries in (found or {}).values():
            for entry_id, pairs in entries.items():
                if pairs is None:
                    await reader.xack(stream, self._group, [entry_id])
                    return _text(entry_id), None
                return _text(entry_id), self._entry(stream, entry_id, pairs)
        return None

    async def _claim(self, client: GlideClient, stream: str) -> AsyncIterator[ValKeyMessage]:
        """Entries pending with any consumer for longer than ``min_idle``, one at a time."""
        cursor: str = "0-0"
        while True:
            reply = await client.xautoclaim(
                stream, self._group, self._consumer, self._min_idle_ms, cursor, count=1
            )
            cursor = _text(cast(bytes, reply[0]))
            claimed = cast(Mapping[bytes, list[list[bytes]]], reply[1])
            for entry_id, pairs in claimed.items():
                yield self._entry(stream, entry_id, pairs)
            if cursor == "0-0":
                return

    def _entry(
        self, stream: str, entry_id: bytes, pairs: Sequence[Sequence[bytes]]
    ) -> ValKeyMessage:
        fields = {_text(k): _text(v) for k, v in pairs}
        return ValKeyMessage(source=stream, id=_text(entry_id), fields=fields)

    async def _entry_delivery(self, entry: ValKeyMessage | None) -> _Delivery | None:
        if entry is None or entry.id is None or entry.id in self._in_flight:
            return None  # gone, or claimed back while this service runs it
        digest = hashlib.sha256(f"{entry.source}\0{self._group}\0{entry.id}".encode())
        return await self._delivery(entry, run_id=f"valkey-{digest.hexdigest()[:32]}")

    # -- both ----------------------------------------------------------------------

    async def _delivery(self, message: ValKeyMessage, run_id: str | None) -> _Delivery | None:
        """A delivery for ``message``, or None once a message that maps to no
        parameters is dead-lettered and acknowledged."""
        trigger: dict[str, Any] = {"kind": self.kind, "source": self.source}
        if message.id is not None:
            trigger |= {"message_id": message.id, "group": self._group}
        try:
            parameters = dict(self._parameters(message))
        except Exception as exc:
            _log.warning("%r: message %s refused: %s", self, message.id or "", exc)
            refusal = RunOutcome(run_id or "", None, error=f"{type(exc).__name__}: {exc}")
            await self._settle(message, refusal)
            return None
        request = RunRequest(parameters=parameters, run_id=run_id, trigger=trigger)
        if message.id is not None:
            self._in_flight.add(message.id)
        return _Delivery(request, message, self)

    async def _settle(self, message: ValKeyMessage, outcome: RunOutcome) -> None:
        client = self._client
        if client is None:
            raise ClosedResourceError(f"{self!r} was closed before run {outcome.run_id} ended")
        if not outcome.succeeded and self._dead_letter_stream is not None:
            await client.xadd(self._dead_letter_stream, _dead_letter_fields(self, message, outcome))
        if message.id is not None and self._stream is not None:
            await client.xack(self._stream, self._group, [message.id])

    def _forget(self, message: ValKeyMessage) -> None:
        if message.id is not None:
            self._in_flight.discard(message.id)


def _dead_letter_fields(
    trigger: ValKeyTrigger, message: ValKeyMessage, outcome: RunOutcome
) -> list[tuple[TEncodable, TEncodable]]:
    pairs: list[tuple[TEncodable, TEncodable]] = list(message.fields.items())
    if message.payload is not None:
        pairs.append(("payload", message.payload))
    status = outcome.status.value if outcome.status is not None else "refused"
    pairs += [
        ("pirn_like.error", "; ".join(outcome.errors) or f"run {status}"),
        ("pirn_like.run_id", outcome.run_id),
        ("pirn_like.status", status),
        ("pirn_like.source", trigger.source),
        ("pirn_like.message_id", message.id or ""),
    ]
    return pairs


def _text(value: object) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


class _Delivery:
    __slots__ = ("_message", "_owner", "_request")

    def __init__(self, request: RunRequest, message: ValKeyMessage, owner: ValKeyTrigger) -> None:
        self._request = request
        self._message = message
        self._owner = owner

    @property
    def request(self) -> RunRequest:
        return self._request

    @property
    def message(self) -> ValKeyMessage:
        """What was received."""
        return self._message

    async def settle(self, outcome: RunOutcome) -> None:
        try:
            await self._owner._settle(self._message, outcome)  # pyright: ignore[reportPrivateUsage]
        finally:
            self._owner._forget(self._message)  # pyright: ignore[reportPrivateUsage]

    async def release(self) -> None:
        # A stream entry stays pending: this consumer reads it again when it restarts,
        # another claims it after min_idle. A pub/sub message is lost.
        self._owner._forget(self._message)  # pyright: ignore[reportPrivateUsage]
