"""Run events to ValKey (or Redis): a capped stream, or a pub/sub channel."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Self

from pirn_like._errors import MissingExtraError
from pirn_like.backends._url import BackendURL
from pirn_like.backends._valkey import ValKeyServer, parse_valkey_url
from pirn_like.core._events import RunEvent
from pirn_like.emitters._fields import event_fields

if TYPE_CHECKING:
    from glide import GlideClient, StreamAddOptions, TEncodable

__all__ = ["ValKeyEmitter"]

DEFAULT_STREAM = "pirn_like:events"


class ValKeyEmitter:
    """Sends each run event as JSON to a ValKey stream (``XADD``) or channel (``PUBLISH``).

    With ``stream`` (the default, ``pirn_like:events``) each event is an entry with
    the fields ``event`` (``run_started``, ``knot_started``, ``knot_finished``,
    ``run_finished``), ``run_id``, ``knot_id`` (for knot events) and ``data`` (all
    fields as JSON, as ``LogEmitter`` logs them); the stream is capped near ``maxlen``
    entries (approximate trimming, which ValKey does cheaply). With ``channel`` each
    event is published as the JSON of its fields. Values go along only
    ``with_payload``. ``url`` is ``valkey://[user[:password]@]host[:port][/db]``
    (``valkeys://`` for TLS); ``timeout`` bounds each request, in seconds.
    """

    def __init__(
        self,
        url: str = "valkey://127.0.0.1:6379/0",
        *,
        stream: str | None = None,
        channel: str | None = None,
        maxlen: int = 100_000,
        with_payload: bool = False,
        timeout: float = 10.0,
    ) -> None:
        if stream is not None and channel is not None:
            raise ValueError("ValKeyEmitter sends to a stream or a channel, not both")
        if not isinstance(maxlen, int) or maxlen < 1:
            raise ValueError(f"maxlen must be a positive number of entries, got {maxlen!r}")
        self._server = ValKeyServer(**parse_valkey_url(url), timeout=timeout)
        self.channel = channel
        self.stream = None if channel is not None else (stream or DEFAULT_STREAM)
        self.maxlen = maxlen
        self.with_payload = with_payload
        self._client: GlideClient | None = None
        self._add_options: StreamAddOptions | None = None

    def __repr__(self) -> str:
        target = f"stream={self.stream!r}" if self.stream else f"channel={self.channel!r}"
        return f"ValKeyEmitter({BackendURL.parse(self._server.url).redacted!r}, {target})"

    async def __aenter__(self) -> Self:
        try:
            import glide
        except ImportError as exc:
            raise MissingExtraError("ValKeyEmitter", "valkey", "valkey-glide") from exc
        self._add_options = glide.StreamAddOptions(
            trim=glide.TrimByMaxLen(exact=False, threshold=self.maxlen)
        )
        self._client = await glide.GlideClient.create(self._server.client_config())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def emit(self, event: RunEvent) -> None:
        """``XADD`` or ``PUBLISH`` the event's fields."""
        client = self._client
        if client is None:
            raise RuntimeError(f"{self!r} is not open: use it in Tapestry(emitters=[...])")
        fields = event_fields(event, with_payload=self.with_payload)
        data = json.dumps(fields, default=repr)
        if self.stream is None:
            assert self.channel is not None
            await client.publish(data, self.channel)
            return
        entry: list[tuple[TEncodable, TEncodable]] = [
            ("event", fields["event"]),
            ("run_id", fields["run_id"]),
        ]
        if "knot_id" in fields:
            entry.append(("knot_id", fields["knot_id"]))
        entry.append(("data", data))
        await client.xadd(self.stream, entry, self._add_options)
