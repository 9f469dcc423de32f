"""``WebhookEmitter``: run events POSTed as JSON, signed, retried; an alerter on failures."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Self

from pirn_like._errors import ClosedResourceError
from pirn_like.backends._http import MAX_BACKOFF, check_post_options, http_client, post_retrying
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
        check_post_options("WebhookEmitter", url, timeout, retries, backoff)
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
            + sum(min(backoff * 2**i, MAX_BACKOFF) for i in range(retries))
        )

    def __repr__(self) -> str:
        return f"WebhookEmitter({self.url!r})"

    async def __aenter__(self) -> Self:
        if self._client is not None:
            raise RuntimeError(f"{self!r} is already open")
        self._client = http_client(
            "WebhookEmitter", timeout=self.timeout, transport=self._transport
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
        await post_retrying(
            client,
            self.url,
            body,
            headers,
            signature=self._signature,
            retries=self.retries,
            backoff=self.backoff,
            sender=repr(self),
        )


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
