"""Gate: pass a value through, or skip everything downstream."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pirn_like.core._config import KnotConfig
from pirn_like.core._knot import Knot, Registrar
from pirn_like.core._results import Skipped, SkipReason
from pirn_like.nodes._checks import call_maybe_async, require_callable, require_knot

__all__ = ["Gate"]


class Gate(Knot):
    """Outputs ``input`` when ``predicate(input)`` is true; otherwise ends ``Skipped``
    with reason ``gate_closed``, which skips its consumers under the default policy."""

    def __init__(
        self,
        *,
        input: Any,
        predicate: Callable[[Any], Any],
        _config: KnotConfig | None = None,
        tapestry: Registrar | None = None,
    ) -> None:
        name = f"Gate {getattr(_config, 'id', '?')!r}"
        self.predicate = require_callable(name, "predicate", predicate)
        super().__init__(
            _config=_config, tapestry=tapestry, input=require_knot(name, "input", input)
        )

    def identity_settings(self) -> dict[str, object]:
        return {**super().identity_settings(), "predicate": self.predicate}

    async def process(self, input: Any, **_: Any) -> Any:
        if await call_maybe_async(self.predicate, input):
            return input
        return Skipped(SkipReason.GATE_CLOSED, f"gate {self.id!r}: predicate was false")
