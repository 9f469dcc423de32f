"""Shared checks and calls for the built-in nodes."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from pirn_like._errors import WiringError
from pirn_like.core._knot import Knot, Ref

__all__ = ["call_maybe_async", "require_callable", "require_knot"]


def require_knot(node: str, name: str, value: object) -> Knot | Ref:
    """``value`` if it is a knot (or Ref), else a WiringError naming the node and input."""
    if not isinstance(value, Knot | Ref):
        raise WiringError(
            f"{node}: {name!r} must be a knot (the value comes from a parent), "
            f"got {type(value).__name__} {value!r}"
        )
    return value


def require_callable(node: str, name: str, value: object) -> Callable[..., Any]:
    """``value`` if callable, else a WiringError naming the node and argument."""
    if not callable(value):
        raise WiringError(f"{node}: {name!r} must be callable, got {type(value).__name__}")
    return value


async def call_maybe_async(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """Call ``fn``; await the result if it is awaitable (async functions and lambdas)."""
    value = fn(*args, **kwargs)
    if inspect.isawaitable(value):
        value = await value
    return value
