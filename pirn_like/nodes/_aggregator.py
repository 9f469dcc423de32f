"""Aggregator: combine several parents with one callable."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pirn_like._errors import WiringError
from pirn_like.core._config import KnotConfig
from pirn_like.core._knot import Knot, Registrar
from pirn_like.nodes._checks import call_maybe_async, require_callable, require_knot

__all__ = ["Aggregator"]


class Aggregator(Knot):
    """``combine(**inputs)`` over N parents: ``Aggregator(a=k1, b=k2, combine=f, _config=...)``.

    ``combine`` may be sync or async; it runs in the event loop, so keep it light.
    """

    def __init__(
        self,
        *,
        combine: Callable[..., Any],
        _config: KnotConfig | None = None,
        tapestry: Registrar | None = None,
        **parents: Any,
    ) -> None:
        name = f"Aggregator {getattr(_config, 'id', '?')!r}"
        self.combine = require_callable(name, "combine", combine)
        if not parents:
            raise WiringError(f"{name} needs at least one parent knot")
        for key, value in parents.items():
            require_knot(name, key, value)
        super().__init__(_config=_config, tapestry=tapestry, **parents)

    def identity_settings(self) -> dict[str, object]:
        return {**super().identity_settings(), "combine": self.combine}

    async def process(self, **inputs: Any) -> Any:
        return await call_maybe_async(self.combine, **inputs)
