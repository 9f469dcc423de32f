"""Signed, retried HTTP POSTs: what the webhook emitter and the bridge's webhook sink
share. httpx and tenacity are imported on first use."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import anyio

from pirn_like._errors import MissingExtraError
from pirn_like.core._signing import Signature

if TYPE_CHECKING:
    import httpx

__all__ = ["MAX_BACKOFF", "check_post_options", "http_client", "post_retrying"]

MAX_BACKOFF = 30.0
"""The longest wait between two attempts, in seconds."""


def check_post_options(
    owner: str, url: object, timeout: float, retries: int, backoff: float
) -> None:
    """ValueError naming ``owner`` unless ``url`` is http(s) and the numbers make sense."""
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValueError(f"{owner} needs an http(s) URL, got {url!r}")
    if not timeout > 0:
        raise ValueError(f"timeout must be positive, not {timeout!r}")
    if retries < 0 or backoff < 0:
        raise ValueError(f"retries and backoff must not be negative: {retries!r}, {backoff!r}")


def http_client(
    owner: str, *, timeout: float, transport: httpx.AsyncBaseTransport | None
) -> httpx.AsyncClient:
    """A client that does not follow redirects; ``MissingExtraError`` without httpx."""
    try:
        import httpx
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingExtraError(owner, "webhook", "httpx") from exc
    return httpx.AsyncClient(timeout=timeout, follow_redirects=False, transport=transport)


async def post_retrying(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    signature: Signature | None,
    retries: int,
    backoff: float,
    sender: str,
) -> None:
    """POST ``body`` until it is answered 2xx, signing each attempt afresh.

    Connection errors, timeouts and 5xx answers are retried up to ``retries`` times with
    exponential backoff from ``backoff`` seconds; a 4xx is not. What still fails raises
    httpx's error (``HTTPStatusError`` says ``<sender>: the receiver answered <status>``).
    """
    import httpx
    import tenacity

    retrying = tenacity.AsyncRetrying(
        stop=tenacity.stop_after_attempt(retries + 1),
        wait=tenacity.wait_exponential(multiplier=backoff, max=MAX_BACKOFF),
        retry=tenacity.retry_if_exception(_retryable),
        sleep=anyio.sleep,
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            # A timestamped signature must be fresh on every attempt.
            signed = signature.sign(body) if signature is not None else {}
            response = await client.post(url, content=body, headers={**headers, **signed})
            if not response.is_success:  # a redirect is not followed: not delivered
                raise httpx.HTTPStatusError(
                    f"{sender}: the receiver answered {response.status_code} "
                    f"{response.reason_phrase}",
                    request=response.request,
                    response=response,
                )


def _retryable(exc: BaseException) -> bool:
    import httpx

    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code >= 500
    return isinstance(exc, httpx.TransportError)
