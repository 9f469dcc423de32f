"""``WebhookSink``: each event POSTed as JSON, signed, retried until acknowledged."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Self

from pirn_like._errors import ClosedResourceError
from pirn_like.backends._http import check_post_options, http_client, post_retrying
from pirn_like.backends._url import redact
from pirn_like.capabilities.events._bridge_errors import BridgeSinkError
from pirn_like.capabilities.events._bridge_protocol import BridgeMessage
from pirn_like.core._signing import Signature

if TYPE_CHECKING:
    import httpx

__all__ = ["WebhookSink"]


class WebhookSink:
    """POSTs each event to ``url`` as JSON, one request per event, in order
    (``pip install 'pirn-like[webhook]'``).

    Requests carry ``Idempotency-Key: <entity_type>/<entity_id>@<version>`` (a
    ``WebhookTrigger`` receiving them turns it into the run id, so a resent event does
    not run twice) and, with ``secret`` (a string, or a ``Signature`` for another
    preset), an HMAC signature over the body as ``WebhookTrigger(signature=...)``
    verifies it; with ``token``, ``Authorization: Bearer <token>``. ``secret`` must be
    given: pass ``secret=None`` to send unsigned requests on purpose.

    An event counts as acknowledged on a 2xx answer. Connection errors, timeouts
    (``timeout`` seconds per attempt) and 5xx answers are retried up to ``retries``
    times with exponential backoff from ``backoff`` seconds; a 4xx answer is not. What
    still fails raises ``BridgeSinkError``, so the events from there on are sent again
    on the next push. ``transport`` (e.g. ``httpx.ASGITransport(app)``) replaces the
    network.
    """

    def __init__(
        self,
        url: str,
        *,
        secret: str | bytes | Signature | None,
        token: str | None = None,
        timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 0.5,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        check_post_options("WebhookSink", url, timeout, retries, backoff)
        self.url = url
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._signature = secret if isinstance(secret, Signature | None) else Signature(secret)
        auth = {"Authorization": f"Bearer {token}"} if token else {}
        self._headers = {"Content-Type": "application/json", **(headers or {}), **auth}
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    @property
    def identity(self) -> str:
        """The URL, any password in it redacted."""
        return f"webhook:{redact(self.url)}"

    def __repr__(self) -> str:
        return f"WebhookSink({redact(self.url)!r})"

    async def __aenter__(self) -> Self:
        if self._client is not None:
            raise RuntimeError(f"{self!r} is already open")
        self._client = http_client("WebhookSink", timeout=self.timeout, transport=self._transport)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def send(self, messages: Sequence[BridgeMessage]) -> None:
        """POST each message in turn; return once every one was answered 2xx."""
        client = self._client
        if client is None:
            raise ClosedResourceError(f"{self!r} is not open: use it in a Bridge")
        import httpx

        for m in messages:
            try:
                await post_retrying(
                    client,
                    self.url,
                    m.body,
                    {**self._headers, "Idempotency-Key": m.key},
                    signature=self._signature,
                    retries=self.retries,
                    backoff=self.backoff,
                    sender=repr(self),
                )
            except (httpx.HTTPError, OSError) as exc:
                raise BridgeSinkError(
                    f"event {m.key} (seq {m.event.seq}) was not acknowledged: {exc}"
                ) from exc
