"""The webhook's HTTP endpoints: authenticate, read, check, hand over, answer.

Loaded when a ``WebhookTrigger`` builds its app, so Starlette is imported on first use.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pirn_like._errors import ParameterError, SignatureError
from pirn_like.core._records import RunRequest
from pirn_like.core._signing import Signature, constant_time_equal
from pirn_like.triggers._webhook_channel import (
    DeliveryChannel,
    DeliveryState,
    Refusal,
    WebhookDelivery,
)
from pirn_like.triggers._webhook_http import (
    BadRequest,
    answer,
    outcome_response,
    parse_object,
    read_body,
    unfit_parameters,
    wait_seconds,
)

if TYPE_CHECKING:
    from pirn_like._tapestry import Tapestry

__all__ = ["EndpointSettings", "build_app"]

_MAX_KEY = 200
"""Longest Idempotency-Key accepted."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointSettings:
    """What the endpoints need to know of their trigger."""

    path: str
    health_path: str
    auth: bool
    token: str | None
    signature: Signature | None
    max_body_bytes: int
    body_timeout: float
    wait_timeout: float
    accept_timeout: float
    tapestry: Tapestry | None
    to_parameters: Callable[[dict[str, Any]], Mapping[str, Any]] | None


def build_app(settings: EndpointSettings, channel: DeliveryChannel) -> Starlette:
    """A Starlette app with ``POST <path>`` and ``GET <health_path>``."""
    endpoint = _Endpoint(settings, channel)
    app = Starlette(
        routes=[
            Route(settings.path, endpoint.post, methods=["POST"]),
            Route(settings.health_path, endpoint.health, methods=["GET"]),
        ]
    )
    # Exactly these two paths: no redirects from "/run/" that a client might follow.
    app.router.redirect_slashes = False
    return app


class _Endpoint:
    def __init__(self, settings: EndpointSettings, channel: DeliveryChannel) -> None:
        self.settings = settings
        self.channel = channel

    async def health(self, request: Request) -> Response:
        # Says only whether runs are being taken: nothing about the service behind it.
        if self.channel.is_open and self.channel.consumers:
            return answer(200, "", status="ok")
        return answer(503, "", status="unavailable")

    async def post(self, request: Request) -> Response:
        try:
            run_request = await self._accept(request)
        except BadRequest as refused:
            return refused.response
        return await self._hand_over(run_request, wait_seconds(request, self.settings.wait_timeout))

    async def _accept(self, request: Request) -> RunRequest:
        """The run a request asks for, or BadRequest saying why it is refused."""
        s = self.settings
        if not self.channel.is_open:
            raise BadRequest(
                answer(
                    503,
                    "no run_forever is taking this webhook's requests: serve it with "
                    "run_forever(trigger, tapestry)",
                )
            )
        headers = request.headers
        bearer_ok = self._bearer_ok(headers.get("authorization"))
        if s.auth and not bearer_ok and s.signature is None:
            raise BadRequest(
                answer(401, "missing or wrong token: send 'Authorization: Bearer <token>'")
            )
        body = await read_body(request, s.max_body_bytes, s.body_timeout)
        if s.auth and not bearer_ok and s.signature is not None:
            try:
                s.signature.verify(headers, body)
            except SignatureError as exc:
                raise BadRequest(answer(401, str(exc))) from None
        parameters = self._parameters(parse_object(body))
        message_id, run_id = self._identity(headers)
        client = request.client
        trigger = {
            "kind": "webhook",
            "source": s.path,
            "message_id": message_id,
            "remote": client.host if client is not None else None,
        }
        return RunRequest(parameters=parameters, run_id=run_id, trigger=trigger)

    def _bearer_ok(self, authorization: str | None) -> bool:
        token = self.settings.token
        if token is None or authorization is None:
            return False
        scheme, _, given = authorization.partition(" ")
        return scheme.lower() == "bearer" and constant_time_equal(given.strip(), token)

    def _parameters(self, body: dict[str, Any]) -> dict[str, Any]:
        s = self.settings
        parameters: Mapping[str, Any] = body
        if s.to_parameters is not None:
            try:
                parameters = s.to_parameters(body)
            except (ValueError, KeyError, TypeError) as exc:
                raise BadRequest(unfit_parameters(f"{type(exc).__name__}: {exc}")) from None
        if s.tapestry is not None:
            try:
                s.tapestry.check_parameters(parameters)
            except ParameterError as exc:
                raise BadRequest(unfit_parameters(str(exc))) from None
        return dict(parameters)

    def _identity(self, headers: Mapping[str, str]) -> tuple[str, str]:
        """``(message_id, run_id)``. The run id is derived from the Idempotency-Key,
        the signature preset's delivery id, or a timestamped signature, so every copy
        of one request gets the same one; otherwise it is fresh."""
        path = self.settings.path
        key = headers.get("idempotency-key")
        if key is not None:
            if not (0 < len(key) <= _MAX_KEY and key.isascii() and key.isprintable()):
                raise BadRequest(
                    answer(
                        400, f"Idempotency-Key must be 1 to {_MAX_KEY} printable ASCII characters"
                    )
                )
            return key, _derived_run_id(path, "key", key)
        signature = self.settings.signature
        signed = signature.request_id(headers) if signature is not None else None
        if signed:
            run_id = _derived_run_id(path, "signed", signed)
            return run_id.removeprefix("webhook-"), run_id
        fresh = uuid.uuid4().hex
        return fresh, f"webhook-{fresh}"

    async def _hand_over(self, run_request: RunRequest, wait: float | None) -> Response:
        """Queue the request for run_forever; answer once it is taken (or has ended)."""
        run_id = run_request.run_id
        offered = self.channel.offer(run_request)
        match offered:
            case Refusal.IN_PROGRESS:
                return answer(
                    409, "a request with this Idempotency-Key is in progress", run_id=run_id
                )
            case Refusal.FULL:
                return answer(503, "too many requests are waiting for a run slot")
            case Refusal.CLOSED:
                return answer(503, "this webhook is shutting down")
            case WebhookDelivery():
                delivery = offered
        try:
            with anyio.move_on_after(self.settings.accept_timeout):
                await delivery.taken.wait()
            self.channel.withdraw(delivery)  # no-op once taken
            if delivery.state is DeliveryState.WITHDRAWN:
                return self._not_taken(run_id)
            if wait is None:
                return answer(202, "", run_id=run_id, status="accepted")
            with anyio.move_on_after(wait):
                await delivery.done.wait()
            return _waited(delivery)
        finally:
            # A client that went away (a cancelled handler) leaves nothing queued.
            self.channel.withdraw(delivery)

    def _not_taken(self, run_id: str | None) -> Response:
        if not self.channel.is_open:
            return answer(503, "this webhook is shutting down", run_id=run_id)
        why = "no run slot freed up" if self.channel.consumers else "nothing took the request"
        return answer(503, f"{why} within {self.settings.accept_timeout:g}s", run_id=run_id)


def _waited(delivery: WebhookDelivery) -> Response:
    run_id = delivery.request.run_id
    if delivery.state is DeliveryState.TAKEN:
        return answer(202, "", run_id=run_id, status="running")
    if delivery.outcome is None:
        return answer(
            503,
            "the service stopped before the run finished; send the request again "
            "(with the same Idempotency-Key) to finish it",
            run_id=run_id,
        )
    return outcome_response(delivery.outcome)


def _derived_run_id(path: str, kind: str, value: str) -> str:
    digest = hashlib.sha256(f"{path}\n{kind}\n{value}".encode()).hexdigest()
    return f"webhook-{digest[:32]}"
