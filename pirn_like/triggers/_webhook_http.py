"""HTTP details of the webhook trigger: reading bodies, and answers as JSON responses.

Imported only once the trigger builds its app, so Starlette is loaded on first use.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse

from pirn_like.core._records import RunOutcome, RunStatus

__all__ = [
    "BadRequest",
    "answer",
    "outcome_response",
    "parse_object",
    "read_body",
    "unfit_parameters",
    "wait_seconds",
]

RETRY_AFTER = "1"
"""Seconds a client told to come back (503) should wait first."""

_STATUS_CODES = {
    RunStatus.SUCCEEDED: 200,
    RunStatus.FAILED: 500,
    RunStatus.TIMED_OUT: 504,
    RunStatus.CANCELLED: 503,
    RunStatus.RUNNING: 409,
}


class BadRequest(Exception):
    """The request cannot be taken; ``response`` says why."""

    def __init__(self, response: JSONResponse) -> None:
        super().__init__(response.status_code)
        self.response = response


def answer(code: int, message: str, /, **fields: Any) -> JSONResponse:
    """A JSON response with status ``code``: ``{"error": message, **fields}`` (without
    ``error`` when ``message`` is empty)."""
    body: dict[str, Any] = {"error": message} if message else {}
    body.update(fields)
    headers = {"Cache-Control": "no-store"}
    if code == 503:
        headers["Retry-After"] = RETRY_AFTER
    if code == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="pirn_like"'
    return JSONResponse(body, status_code=code, headers=headers)


async def read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The whole body, refused (413) as soon as it is known to pass ``limit`` bytes:
    by its Content-Length before reading, and by counting what actually arrives; and
    refused (408) if it has not all arrived within ``timeout`` seconds."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise BadRequest(answer(400, f"Content-Length is not a number: {declared[:40]!r}"))
        if int(declared) > limit:
            raise BadRequest(_too_large(limit))
    chunks: list[bytes] = []
    size = 0
    try:
        with anyio.fail_after(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise BadRequest(_too_large(limit))
                chunks.append(chunk)
    except TimeoutError:
        raise BadRequest(answer(408, f"the body did not arrive within {timeout:g}s")) from None
    except ClientDisconnect:
        raise BadRequest(
            answer(400, "the client went away before sending the whole body")
        ) from None
    return b"".join(chunks)


def parse_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object (an empty body is ``{}``); 400 otherwise."""
    if not body.strip():
        return {}
    try:
        value = json.loads(body, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise BadRequest(answer(400, f"the body is not valid JSON: {exc}")) from None
    if not isinstance(value, dict):
        raise BadRequest(
            answer(
                400,
                f"the body must be a JSON object of parameters, not a JSON {_json_kind(value)}",
            )
        )
    return value


def wait_seconds(request: Request, limit: float) -> float | None:
    """How long the client asked to wait for the outcome (``?wait=true`` or RFC 7240
    ``Prefer: wait`` / ``Prefer: wait=<seconds>``), at most ``limit``; None: do not."""
    if request.query_params.get("wait", "").lower() in {"1", "true", "yes"}:
        return limit
    for preference in request.headers.get("prefer", "").split(","):
        name, _, value = preference.strip().partition("=")
        if name.strip().lower() != "wait":
            continue
        value = value.strip().strip('"')
        if value.isascii() and value.isdigit():
            return min(float(value), limit)
        return limit
    return None


def outcome_response(outcome: RunOutcome) -> JSONResponse:
    """The answer to a client that waited for its run: status, errors, output hashes."""
    if outcome.status is None:
        error = outcome.error or "the run was refused"
        kind, _, detail = error.partition(": ")
        if kind == "ParameterError":
            return unfit_parameters(detail, run_id=outcome.run_id)
        code = 409 if kind in {"ResumeError", "DuplicateRunError"} else 500
        return answer(code, "the run was refused", detail=error, run_id=outcome.run_id)
    body: dict[str, Any] = {"run_id": outcome.run_id, "status": outcome.status.value}
    if outcome.duplicate:
        body["duplicate"] = True
    result = outcome.result
    if result is not None:
        terminals = set(result.terminals_requested)
        body["outputs"] = {
            rec.knot_id: rec.output_hash
            for rec in result.lineage
            if rec.knot_id in terminals and rec.output_hash is not None
        }
    code = _STATUS_CODES[outcome.status]
    if code != 200:
        body["errors"] = outcome.errors
        return answer(code, f"the run ended {outcome.status.value}", **body)
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


def unfit_parameters(detail: str, **fields: Any) -> JSONResponse:
    """422: the body's parameters do not fit the tapestry (``detail`` names which)."""
    return answer(422, "the body does not fit the tapestry's parameters", detail=detail, **fields)


def _too_large(limit: int) -> JSONResponse:
    return answer(413, f"the body is larger than this webhook's limit of {limit} bytes")


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


def _json_kind(value: object) -> str:
    match value:
        case list():
            return "array"
        case str():
            return "string"
        case bool():
            return "boolean"
        case None:
            return "null"
        case _:
            return "number"
