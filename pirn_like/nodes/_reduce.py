"""Reduce: fold a list parent into one value."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from pirn_like._errors import WiringError
from pirn_like.core._config import KnotConfig
from pirn_like.core._knot import Knot, Registrar
from pirn_like.nodes._checks import call_maybe_async, require_callable, require_knot

__all__ = ["Reduce"]

_NO_INITIAL: Any = object()


def _required_positionals(fn: Callable[..., Any]) -> int | None:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    return sum(
        1
        for p in params
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    )


class Reduce(Knot):
    """Fold ``of`` (a list) with ``combine``.

    Whole-list form: ``combine(items)`` (e.g. ``sum``). Pairwise form, chosen when
    ``combine`` takes two arguments or ``initial`` is given:
    ``combine(...combine(combine(initial, items[0]), items[1])...)``.
    """

    def __init__(
        self,
        *,
        of: Any,
        combine: Callable[..., Any],
        initial: Any = _NO_INITIAL,
        _config: KnotConfig | None = None,
        tapestry: Registrar | None = None,
    ) -> None:
        name = f"Reduce {getattr(_config, 'id', '?')!r}"
        self.combine = require_callable(name, "combine", combine)
        arity = _required_positionals(combine)
        self.pairwise = initial is not _NO_INITIAL or arity == 2
        if self.pairwise and initial is _NO_INITIAL:
            raise WiringError(f"{name}: a two-argument combine needs initial=...")
        inputs: dict[str, Any] = {"of": require_knot(name, "of", of)}
        if self.pairwise:
            inputs["initial"] = initial
        super().__init__(_config=_config, tapestry=tapestry, **inputs)

    def identity_settings(self) -> dict[str, object]:
        return {**super().identity_settings(), "combine": self.combine}

    async def process(self, of: list[Any], initial: Any = None, **_: Any) -> Any:
        if not self.pairwise:
            return await call_maybe_async(self.combine, of)
        acc = initial
        for item in of:
            acc = await call_maybe_async(self.combine, acc, item)
        return acc
