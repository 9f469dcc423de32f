"""``ValKeySink``: events appended to a ValKey (or Redis) stream."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Self

from pirn_like._errors import ClosedResourceError, MissingExtraError
from pirn_like.backends._url import redact
from pirn_like.backends._valkey import ValKeyServer, parse_valkey_url
from pirn_like.capabilities.events._bridge_errors import BridgeSinkError
from pirn_like.capabilities.events._bridge_protocol import BridgeMessage

if TYPE_CHECKING:
    from glide import GlideClient, StreamAddOptions, TEncodable

__all__ = ["ValKeySink"]


class ValKeySink:
    """``XADD``\\ s each event to ``stream`` at ``url`` (``pip install 'pirn-like[valkey]'``):
    ``valkey://[user[:password]@]host[:port][/db]`` (``valkeys://`` for TLS).

    Each entry has the fields ``idempotency_key`` (``<entity_type>/<entity_id>@<version>``),
    ``entity_type``, ``entity_id``, ``version``, ``seq`` and ``event`` (the event as JSON).
    A batch goes in one ``MULTI``/``EXEC`` transaction: the server has all of it or none
    of it when ``send`` returns. With ``maxlen`` the stream is trimmed near that many
    entries. ``timeout`` bounds each request, in seconds. Works on asyncio and trio.
    """

    def __init__(
        self,
        url: str,
        *,
        stream: str,
        maxlen: int | None = None,
        timeout: float = 10.0,
    ) -> None:
        if not isinstance(stream, str) or not stream:
            raise ValueError(f"ValKeySink needs a stream key, got {stream!r}")
        if maxlen is not None and (not isinstance(maxlen, int) or maxlen < 1):
            raise ValueError(f"maxlen must be a positive number of entries or None, got {maxlen!r}")
        self._server = ValKeyServer(**parse_valkey_url(url), timeout=timeout)
        self._url = url
        self.stream = stream
        self.maxlen = maxlen
        self._client: GlideClient | None = None
        self._options: StreamAddOptions | None = None

    @property
    def identity(self) -> str:
        """``valkey:<stream>`` (the server is left out, as for Kafka topics)."""
        return f"valkey:{self.stream}"

    def __repr__(self) -> str:
        return f"ValKeySink({redact(self._url)!r}, stream={self.stream!r})"

    async def __aenter__(self) -> Self:
        if self._client is not None:
            raise RuntimeError(f"{self!r} is already open")
        try:
            import glide
        except ImportError as exc:
            raise MissingExtraError("ValKeySink", "valkey", "valkey-glide") from exc
        trim = (
            None if self.maxlen is None else glide.TrimByMaxLen(exact=False, threshold=self.maxlen)
        )
        self._options = glide.StreamAddOptions(trim=trim)
        try:
            self._client = await glide.GlideClient.create(self._server.client_config())
        except glide.GlideError as exc:
            raise BridgeSinkError(f"{self!r} could not connect: {exc}") from exc
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def send(self, messages: Sequence[BridgeMessage]) -> None:
        """Append the batch in one transaction and wait for the server's reply."""
        client = self._client
        if client is None or self._options is None:
            raise ClosedResourceError(f"{self!r} is not open: use it in a Bridge")
        import glide

        batch = glide.Batch(is_atomic=True)
        for m in messages:
            event = m.event
            fields: list[tuple[TEncodable, TEncodable]] = [
                ("idempotency_key", m.key),
                ("entity_type", event.entity_type),
                ("entity_id", str(event.entity_id)),
                ("version", str(event.version)),
                ("seq", str(event.seq)),
                ("event", m.body),
            ]
            batch.xadd(self.stream, fields, self._options)
        try:
            await client.exec(batch, raise_on_error=True)
        except glide.GlideError as exc:
            raise BridgeSinkError(f"{self!r}: the server refused the batch: {exc}") from exc
