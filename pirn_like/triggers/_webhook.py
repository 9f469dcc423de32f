"""``WebhookTrigger``: authenticated HTTP POSTs of JSON parameters become runs."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any, Self

import anyio

from pirn_like._errors import ClosedResourceError, MissingExtraError
from pirn_like.core._signing import Signature
from pirn_like.protocols import Delivery
from pirn_like.triggers._webhook_channel import DeliveryChannel

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from pirn_like._tapestry import Tapestry

__all__ = ["WebhookTrigger"]

_log = logging.getLogger("pirn_like.triggers")

ParametersHook = Callable[[dict[str, Any]], Mapping[str, Any]]


class WebhookTrigger:
    """Runs the tapestry for each authenticated ``POST <path>`` of a JSON object.

    The body's fields are the run's parameters (or whatever ``to_parameters`` makes of
    the body; it may raise ValueError, KeyError or TypeError to refuse it with 422).
    ``.app`` is a Starlette app; ``run_forever(trigger, tapestry)`` serves it with
    uvicorn on ``host:port`` (asyncio only) unless ``serve=False``, in which case mount
    ``.app`` in an ASGI server of your own running in the same event loop.

    **Authentication** is on by default: ``Authorization: Bearer <token>`` with
    ``token``, else the ``token_env`` environment variable, else a token generated at
    start-up and logged once (WARNING). With ``signature`` (a ``Signature``), requests
    are instead signed over their raw body (a bearer ``token`` given as well is still
    accepted). ``auth=False`` turns authentication off, and says so in the log.

    **Answers**: 202 ``{"run_id"}`` once ``run_forever`` took the request (a run slot
    was free within ``accept_timeout`` seconds); with ``?wait=true`` or ``Prefer: wait``
    the outcome (up to ``wait_timeout`` s): 200 with the status and the terminals'
    output hashes, 500/504/503 for a failed, timed-out or cancelled run, 422 for
    parameters that do not fit. Refusals: 401 without valid auth, 413 over
    ``max_body_bytes``, 408 for a body still arriving after ``body_timeout`` seconds
    (a slow client cannot hold a handler), 400 for a body that is not a JSON object, 422 for bad
    parameters (at once when ``tapestry`` is given, checked against its parameters),
    409 while a request with the same ``Idempotency-Key`` is in progress, 503 with
    ``Retry-After`` when ``queue_size`` requests already wait or no slot freed up.

    An ``Idempotency-Key`` header (or a signature preset's delivery id, or a
    timestamped signature itself) gives the run a deterministic id, so a retried or
    replayed request is recorded once. ``GET <health_path>`` answers 200 while runs
    are being taken, 503 otherwise, and needs no authentication.
    """

    kind = "webhook"

    def __init__(
        self,
        path: str = "/run",
        *,
        token: str | None = None,
        token_env: str = "PIRN_LIKE_WEBHOOK_TOKEN",
        signature: Signature | None = None,
        auth: bool = True,
        host: str = "127.0.0.1",
        port: int = 8080,
        serve: bool = True,
        max_body_bytes: int = 1 << 20,
        body_timeout: float = 30.0,
        wait_timeout: float = 30.0,
        accept_timeout: float = 5.0,
        queue_size: int = 64,
        tapestry: Tapestry | None = None,
        to_parameters: ParametersHook | None = None,
        health_path: str = "/health",
    ) -> None:
        for name, value in (("path", path), ("health_path", health_path)):
            if not value.startswith("/"):
                raise ValueError(f"{name} must start with '/', got {value!r}")
        if path == health_path:
            raise ValueError(f"path and health_path are both {path!r}; give them different paths")
        for name, number in (
            ("max_body_bytes", max_body_bytes),
            ("body_timeout", body_timeout),
            ("wait_timeout", wait_timeout),
            ("accept_timeout", accept_timeout),
            ("queue_size", queue_size),
        ):
            if not number > 0:
                raise ValueError(f"{name} must be positive, not {number!r}")
        if signature is not None and not isinstance(signature, Signature):
            raise TypeError(
                f"signature must be a pirn_like.Signature(secret, preset), not {signature!r}"
            )
        self.path = path
        self.health_path = health_path
        self.host = host
        self.port = port
        self.serve = serve
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout
        self.wait_timeout = wait_timeout
        self.accept_timeout = accept_timeout
        self._signature = signature
        self._tapestry = tapestry
        self._to_parameters = to_parameters
        self._token, self._generated = _resolve_token(auth, token, token_env, signature)
        self._token_env = token_env
        self._auth = auth
        if not auth:
            _log.warning(
                "WebhookTrigger %s: authentication is off (auth=False); anyone who can reach "
                "it can start runs",
                path,
            )
        self._announced = False
        self._app: Starlette | None = None
        self._channel = DeliveryChannel(queue_size)
        self._stack: AsyncExitStack | None = None
        self._closed = False
        self._consuming: anyio.Event | None = None

    # -- lifecycle --------------------------------------------------------------

    @property
    def app(self) -> Starlette:
        """The Starlette app answering the webhook (built on first use)."""
        if self._app is None:
            try:
                from pirn_like.triggers._webhook_endpoint import EndpointSettings, build_app
            except ImportError as exc:  # pragma: no cover - depends on the environment
                raise MissingExtraError("WebhookTrigger", "webhook", "starlette") from exc
            settings = EndpointSettings(
                path=self.path,
                health_path=self.health_path,
                auth=self._auth,
                token=self._token,
                signature=self._signature,
                max_body_bytes=self.max_body_bytes,
                body_timeout=self.body_timeout,
                wait_timeout=self.wait_timeout,
                accept_timeout=self.accept_timeout,
                tapestry=self._tapestry,
                to_parameters=self._to_parameters,
            )
            self._app = build_app(settings, self._channel)
            self._announce()
        return self._app

    @property
    def url(self) -> str:
        """Where the trigger listens when it serves itself (``port`` is the bound one)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{self.path}"

    async def __aenter__(self) -> Self:
        if self._closed:
            raise ClosedResourceError("this WebhookTrigger was closed; create a new one")
        if self._stack is not None:
            raise RuntimeError("this WebhookTrigger is already open")
        app = self.app
        stack = AsyncExitStack()
        if self.serve:
            try:
                from pirn_like.triggers._serve_asgi import serve_asgi
            except ImportError as exc:  # pragma: no cover - depends on the environment
                raise MissingExtraError("WebhookTrigger", "webhook", "uvicorn") from exc
            try:
                self.port = await stack.enter_async_context(
                    serve_asgi(app, host=self.host, port=self.port, name="WebhookTrigger")
                )
            except BaseException:
                await stack.aclose()
                raise
            _log.info("WebhookTrigger listening on %s", self.url)
        self._stack = stack
        self._channel.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._closed = True
        # Answer every client still waiting before the server waits for them.
        self._channel.close()
        if self._consuming is not None:
            self._consuming.set()
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    async def deliveries(self) -> AsyncIterator[Delivery]:
        """Accepted requests, one each time ``run_forever`` has a free run slot."""
        if self._stack is None:
            raise RuntimeError(
                "open the WebhookTrigger before taking deliveries "
                "(run_forever(trigger, tapestry) does, as does 'async with trigger:')"
            )
        channel = self._channel
        channel.consumers += 1
        if self._consuming is not None:
            self._consuming.set()
        try:
            while (delivery := await channel.take()) is not None:
                yield delivery
        finally:
            channel.consumers -= 1

    async def wait_ready(self) -> None:
        """Return once requests are being taken: the trigger is open (and listening,
        if it serves itself) and ``run_forever`` consumes its deliveries."""
        while not (self._channel.is_open and self._channel.consumers):
            if self._closed:
                raise ClosedResourceError("this WebhookTrigger is closed")
            if self._consuming is None or self._consuming.is_set():
                self._consuming = anyio.Event()
            await self._consuming.wait()

    def _announce(self) -> None:
        """Log, once, how to reach the trigger (and a generated token)."""
        if self._announced:
            return
        self._announced = True
        if self._generated:
            _log.warning(
                "WebhookTrigger %s: no token was given and $%s is not set, so this one was "
                "generated for this process; clients send 'Authorization: Bearer <token>': %s",
                self.path,
                self._token_env,
                self._token,
            )


def _resolve_token(
    auth: bool, token: str | None, token_env: str, signature: Signature | None
) -> tuple[str | None, bool]:
    """``(token, generated)``: the bearer token requests must carry, if any."""
    if not auth:
        if token is not None or signature is not None:
            raise ValueError(
                "auth=False turns authentication off: do not also give a token or a signature"
            )
        return None, False
    if token is not None:
        if not token.strip():
            raise ValueError("token must not be empty; omit it to read $" + token_env)
        return token, False
    if signature is not None:
        return None, False
    from_env = os.environ.get(token_env, "").strip()
    if from_env:
        return from_env, False
    return secrets.token_urlsafe(32), True
