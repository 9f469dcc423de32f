"""``WebhookEmitter``: run events POSTed as JSON, signed, retried; an alerter on failures."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Self

import anyio

from pirn_like._errors import ClosedResourceError, MissingExtraError
from pirn_like.core._events import KnotFinished, RunEvent, RunFinished
from pirn_like.core._records import RunStatus
from pirn_like.core._results import Outcome
from pirn_like.core._signing import Signature
from pirn_like.emitters._fields import _KINDS, event_fields, event_kind

if TYPE_CHECKING:
    import httpx

__all__ = ["WebhookEmitter"]

EventFilter = Callable[[RunEvent], bool]

_FAILED_RUNS = frozenset({RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.CANCELLED})
_FAILED_KNOTS = frozenset({Outcome.ERR, Outcome.CANCELLED})
_MAX_BACKOFF = 30.0


class WebhookEmitter:
    """POSTs run events to ``url`` as JSON, one request per event.

    The body is the event's fields (``event``, ``run_id``, status or outcome, times,
    content hashes, ``errors``; never values). ``events`` picks which: event classes
    or their names (``"run_started"``, ``"knot_started"``, ``"knot_finished"``,
    ``"run_finished"``; default: finished runs), or a predicate on the event.
    ``only_failures=True`` narrows that to failed, timed-out or cancelled runs and
    knots, which makes the emitter an alerter.

    With ``secret`` (a string, or a ``Signature`` for another preset) each request is
    signed as a ``WebhookTrigger(signature=...)`` verifies it (``X-Pirn-Like-Signature``
    by default). Each request carries an ``Idempotency-Key`` that is the same on every
    attempt. Connection errors, timeouts (``timeout`` seconds per attempt) and 5xx
    answers are retried up to ``retries`` times with exponential backoff from
    ``backoff`` seconds; a 4xx answer is not retried. What still fails is raised to
    the engine, which logs it: the run is never affected. ``transport`` (an httpx
    transport, e.g. ``httpx.ASGITransport(app)``) replaces the network.
    """

    def __init__(
        self,
        url: str,
        *,
        secret: str | bytes | Signature | None = None,
        events: Iterable[type[RunEvent] | str] | EventFilter = ("run_finished",),
        only_failures: bool = False,
        timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 0.5,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"WebhookEmitter needs an http(s) URL, got {url!r}")
        if not timeout > 0:
            raise ValueError(f"timeout must be positive, not {timeout!r}")
        if retries < 0 or backoff < 0:
            raise ValueError(f"retries and backoff must not be negative: {retries!r}, {backoff!r}")
        self.url = url
        self.only_failures = only_failures
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._signature = secret if isinstance(secret, Signature | None) else Signature(secret)
        self._select = _selector(events)
        self._headers = {"Content-Type": "application/json", **(headers or {})}
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        # The engine abandons an event after its emitter's emit_timeout: allow every attempt.
        self.emit_timeout = (
            1.0
            + (retries + 1) * timeout
            + sum(min(backoff * 2**i, _MAX_BACKOFF) for i in range(retries))
        )

    def __repr__(self) -> str:
        return f"WebhookEmitter({self.url!r})"

    async def __aenter__(self) -> Self:
        if self._client is not None:
            raise RuntimeError(f"{self!r} is already open")
        try:
            import httpx
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise MissingExtraError("WebhookEmitter", "webhook", "httpx") from exc
        self._client = httpx.AsyncClient(
            timeout=self.timeout, follow_redirects=False, transport=self._transport
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def wants(self, event: RunEvent) -> bool:
        """True if ``event`` is one this emitter sends."""
        if not self._select(event):
            return False
        if not self.only_failures:
            return True
        match event:
            case RunFinished(result=result):
                return result.status in _FAILED_RUNS
            case KnotFinished(lineage=rec):
                return rec.outcome in _FAILED_KNOTS
            case _:
                return False

    async def emit(self, event: RunEvent) -> None:
        """POST ``event`` if it is wanted, retrying as documented; raise if it fails."""
        client = self._client
        if client is None:
            raise ClosedResourceError(f"{self!r} is not open: pass it to Tapestry(emitters=...)")
        if not self.wants(event):
            return
        body = json.dumps(event_fields(event), separators=(",", ":")).encode()
        key = hashlib.sha256(body).hexdigest()[:32]
        await self._post(client, body, {**self._headers, "Idempotency-Key": key})

    async def _post(self, client: httpx.AsyncClient, body: bytes, headers: dict[str, str]) -> None:
        import httpx
        import tenacity

        retrying = tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(self.retries + 1),
            wait=tenacity.wait_exponential(multiplier=self.backoff, max=_MAX_BACKOFF),
            retry=tenacity.retry_if_exception(_retryable),
            sleep=anyio.sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                signed = self._signature.sign(body) if self._signature is not None else {}
                response = await client.post(self.url, content=body, headers={**headers, **signed})
                try:
                    response.raise_for_status()
                except httpx.HTTPStatusError as exc:
                    raise httpx.HTTPStatusError(
                        f"{self!r}: the receiver answered {response.status_code} "
                        f"{response.reason_phrase}",
                        request=exc.request,
                        response=response,
                    ) from None


def _retryable(exc: BaseException) -> bool:
    import httpx

    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code >= 500
    return isinstance(exc, httpx.TransportError)


def _selector(events: Iterable[type[RunEvent] | str] | EventFilter) -> EventFilter:
    if callable(events) and not isinstance(events, type):
        return events
    chosen = [events] if isinstance(events, str | type) else list(events)
    names: set[str] = set()
    known = set(_KINDS.values())
    for item in chosen:
        name = _KINDS.get(item) if isinstance(item, type) else item
        if name not in known:
            raise ValueError(
                f"WebhookEmitter: unknown event {item!r}; choose from {sorted(known)}, "
                "their classes (RunFinished, ...), or pass a predicate"
            )
        names.add(name)
    return lambda event: event_kind(event) in names
