"""Calling a knot's code: concurrency limits, validation, timeout and retries."""

from __future__ import annotations

import math
import typing
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio

from pirn_like._errors import KnotTimeoutError
from pirn_like._ids import KnotId, RunId
from pirn_like.core._config import KnotConfig, RetryPolicy
from pirn_like.core._knot import Knot, ProcessSpec
from pirn_like.protocols import Dispatcher, KnotCall

__all__ = ["Attempts", "CallSite", "Limits", "call_knot"]


@dataclass(slots=True)
class Limits:
    """Concurrency limiters of one run: global, per tag, and per knot (shared by runs)."""

    run: anyio.CapacityLimiter | None = None
    tags: Mapping[str, anyio.CapacityLimiter] = field(default_factory=dict[str, Any])

    @classmethod
    def create(cls, max_concurrency: int | None, tag_limits: Mapping[str, int]) -> Limits:
        return cls(
            run=anyio.CapacityLimiter(max_concurrency) if max_concurrency else None,
            tags={tag: anyio.CapacityLimiter(n) for tag, n in tag_limits.items()},
        )

    def for_knot(self, knot: Knot) -> list[anyio.CapacityLimiter]:
        """The limiters one execution of ``knot`` must hold, in a fixed global order."""
        limiters: list[anyio.CapacityLimiter] = []
        own = _knot_limiter(knot)
        if own is not None:
            limiters.append(own)
        if self.tags:
            limiters.extend(self.tags[t] for t in sorted(knot.config.tags) if t in self.tags)
        if self.run is not None:
            limiters.append(self.run)
        return limiters


def _knot_limiter(knot: Knot) -> anyio.CapacityLimiter | None:
    limit = knot.config.max_concurrency
    if limit is None:
        return None
    limiter: anyio.CapacityLimiter | None = knot.__dict__.get("_limiter")
    if limiter is None:
        limiter = anyio.CapacityLimiter(limit)
        knot.__dict__["_limiter"] = limiter
    return limiter


@dataclass(frozen=True, slots=True, kw_only=True)
class CallSite:
    """Everything needed to call one knot's code, fixed for the whole execution."""

    run_id: RunId
    knot_id: KnotId
    target: Callable[..., Any]
    spec: ProcessSpec
    config: KnotConfig
    dispatcher: Dispatcher
    limiters: list[anyio.CapacityLimiter]


class Attempts:
    """How many times a knot's code was called; kept when the last try raises."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


async def call_knot(site: CallSite, kwargs: dict[str, Any], attempts: Attempts) -> Any:
    """Call the knot's code once or, with a retry policy, until it succeeds.

    Returns the value; raises the last failure. ``attempts`` counts the calls.
    """
    config = site.config
    if config.validate_io:
        kwargs = _validate_inputs(site, kwargs)
    retry = config.retry
    if retry is None:
        attempts.count = 1
        value = await _attempt(site, kwargs)
    else:
        value = await _with_retries(site, kwargs, retry, attempts)
    if config.validate_io:
        value = _validate_output(site, value)
    return value


async def _attempt(site: CallSite, kwargs: Mapping[str, Any]) -> Any:
    call = KnotCall(site.run_id, site.knot_id, site.target, kwargs, site.spec.is_async)
    timeout = site.config.timeout
    if not site.limiters:
        if timeout is None:
            return await site.dispatcher.run(call)
        return await _with_timeout(site, call, timeout)
    async with _Hold(site.limiters):
        if timeout is None:
            return await site.dispatcher.run(call)
        return await _with_timeout(site, call, timeout)


class _Hold:
    """Acquire limiters in their fixed order, release in reverse."""

    __slots__ = ("_limiters",)

    def __init__(self, limiters: list[anyio.CapacityLimiter]) -> None:
        self._limiters = limiters

    async def __aenter__(self) -> None:
        acquired: list[anyio.CapacityLimiter] = []
        try:
            for limiter in self._limiters:
                await limiter.acquire()
                acquired.append(limiter)
        except BaseException:
            for limiter in reversed(acquired):
                limiter.release()
            raise

    async def __aexit__(self, *exc_info: object) -> None:
        for limiter in reversed(self._limiters):
            limiter.release()


async def _with_timeout(site: CallSite, call: KnotCall, timeout: float) -> Any:
    try:
        with anyio.fail_after(timeout):
            return await site.dispatcher.run(call)
    except TimeoutError:
        # In-process dispatchers (those that await async knots inline) run sync knots
        # on threads, which cannot be stopped; out-of-process ones kill their worker.
        in_process = getattr(site.dispatcher, "inline_async", False)
        hint = (
            "; its worker thread cannot be stopped, so it was abandoned and its late "
            "result will be discarded (use ProcessDispatcher for hard timeouts)"
            if in_process and not site.spec.is_async
            else ""
        )
        raise KnotTimeoutError(
            f"knot {site.knot_id!r} timed out after {timeout:g}s{hint}"
        ) from None


async def _with_retries(
    site: CallSite, kwargs: Mapping[str, Any], retry: RetryPolicy, attempts: Attempts
) -> Any:
    from tenacity import (
        AsyncRetrying,
        retry_if_exception_type,
        stop_after_attempt,
        wait_exponential_jitter,
    )

    retrying = AsyncRetrying(
        stop=stop_after_attempt(retry.attempts),
        wait=wait_exponential_jitter(
            multiplier=retry.initial_delay,
            max=retry.max_delay if retry.max_delay > 0 else math.inf,
            exp_base=retry.multiplier,
            jitter=retry.jitter,
        ),
        retry=retry_if_exception_type(retry.retry_on),
        sleep=anyio.sleep,
        reraise=True,
    )
    value: Any = None
    async for attempt in retrying:  # ends after the first success; re-raises the last failure
        with attempt:
            attempts.count = attempt.retry_state.attempt_number
            value = await _attempt(site, kwargs)
    return value


_adapter_cache: weakref.WeakKeyDictionary[Callable[..., Any], tuple[dict[str, Any], Any]] = (
    weakref.WeakKeyDictionary()
)


def _adapters(site: CallSite) -> tuple[dict[str, Any], Any]:
    """pydantic TypeAdapters for the target's annotated inputs and return, cached per code."""
    from pydantic import TypeAdapter

    target = site.target
    owner: Callable[..., Any] = getattr(target, "__func__", target)
    cached = _adapter_cache.get(owner)
    if cached is None:
        hints = typing.get_type_hints(owner)
        returns = hints.pop("return", None)
        inputs = {name: TypeAdapter(tp) for name, tp in hints.items() if name in site.spec.names}
        cached = (inputs, TypeAdapter(returns) if returns is not None else None)
        _adapter_cache[owner] = cached
    return cached


def _validate_inputs(site: CallSite, kwargs: dict[str, Any]) -> dict[str, Any]:
    inputs, _ = _adapters(site)
    return {
        name: inputs[name].validate_python(value) if name in inputs else value
        for name, value in kwargs.items()
    }


def _validate_output(site: CallSite, value: Any) -> Any:
    _, returns = _adapters(site)
    return value if returns is None else returns.validate_python(value)
