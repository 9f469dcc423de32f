"""Source: a knot with no parents that brings a value in from outside."""

from __future__ import annotations

from typing import Any

from pirn_like._errors import WiringError
from pirn_like.core._config import KnotConfig
from pirn_like.core._knot import Knot, Registrar

__all__ = ["Source"]


class Source(Knot):
    """Base class for knots that read from outside the pipeline (files, queries, fetches).

    Subclass and write ``async def process(self, <constants>, **_) -> T``. A Source
    takes constants only: a knot-valued input is refused.
    """

    def __init__(
        self, *, _config: KnotConfig | None = None, tapestry: Registrar | None = None, **inputs: Any
    ) -> None:
        super().__init__(_config=_config, tapestry=tapestry, **inputs)
        if self.parents:
            raise WiringError(
                f"source {self.id!r} cannot have parents (got {sorted(self.parents)}); "
                "use a Knot for a step that consumes other knots"
            )
