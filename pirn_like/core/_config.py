"""Per-knot configuration: id, error policy, validation, retries, timeout, concurrency."""

from __future__ import annotations

import enum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["CachePolicy", "ErrorPolicy", "KnotConfig", "RetryPolicy"]


class ErrorPolicy(enum.StrEnum):
    """What a knot does when a parent produced ``Err`` or ``Skipped``."""

    SKIP_IF_PARENT_FAILED = "skip_if_parent_failed"
    """The knot is skipped (the default)."""
    RECEIVE_ERRORS = "receive_errors"
    """The knot runs and receives its parents' ``Ok``/``Err``/``Skipped`` results."""
    REQUIRE_ALL_PARENTS = "require_all_parents"
    """The knot fails with ``ParentFailedError``."""


class RetryPolicy(BaseModel):
    """Retry a failing knot with exponential backoff and jitter (via tenacity).

    A knot is tried at most ``attempts`` times. Between tries it waits
    ``initial_delay * multiplier**n`` seconds plus up to ``jitter`` seconds of random
    jitter, capped at ``max_delay``. Only exceptions that are instances of
    ``retry_on`` are retried; timeouts count as ``TimeoutError``.
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, defer_build=True)

    attempts: Annotated[int, Field(ge=1)] = 3
    initial_delay: Annotated[float, Field(ge=0)] = 0.1
    multiplier: Annotated[float, Field(ge=1)] = 2.0
    max_delay: Annotated[float, Field(ge=0)] = 30.0
    jitter: Annotated[float, Field(ge=0)] = 0.1
    retry_on: tuple[type[BaseException], ...] = (Exception,)


class CachePolicy(BaseModel):
    """Memoization of one knot: ``KnotConfig(cache=CachePolicy(...))`` or ``cache=True``.

    A knot whose code, config, constants and input hashes match an earlier successful
    execution (in this run or any earlier run in the same history) is not executed
    again: its output is read from the tapestry's DataStore. ``ttl`` (seconds) ignores
    executions older than that; bumping ``version`` invalidates every earlier entry.
    """

    model_config = ConfigDict(frozen=True, defer_build=True)

    ttl: Annotated[float | None, Field(gt=0)] = None
    version: str = ""


class KnotConfig(BaseModel):
    """Framework settings of one knot, passed as ``_config=`` when the knot is built.

    Only ``error_policy`` and ``validate_io`` can change what a knot outputs, so only
    they (with the knot's class and constant arguments) enter its config hash; ``id``,
    ``description``, ``tags``, ``retry``, ``timeout``, ``max_concurrency``, ``cache``
    and ``dispatcher`` do not.
    """

    model_config = ConfigDict(frozen=True, defer_build=True)

    id: str
    error_policy: ErrorPolicy = ErrorPolicy.SKIP_IF_PARENT_FAILED
    validate_io: bool = False
    description: str = ""
    tags: frozenset[str] = frozenset()
    retry: RetryPolicy | None = None
    timeout: Annotated[float | None, Field(gt=0)] = None
    """Seconds; an async knot is cancelled at its deadline, a sync one abandoned."""
    max_concurrency: Annotated[int | None, Field(ge=1)] = None
    """At most this many executions of this knot at once (across runs and map items)."""
    cache: CachePolicy | None = None
    """Memoize this knot (``True`` for the default policy); off by default."""
    dispatcher: str | None = None
    """Run this knot on the tapestry's dispatcher of that name
    (``Tapestry(dispatchers={"dask": DaskDispatcher.local()})``) instead of the run's."""

    @field_validator("cache", mode="before")
    @classmethod
    def _cache_shorthand(cls, value: object) -> object:
        if value is True:
            return CachePolicy()
        if value is False:
            return None
        return value
