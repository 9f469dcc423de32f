"""SubTapestry: a knot whose body builds and runs a whole inner pipeline."""

from __future__ import annotations

from typing import Any

from pirn_like._errors import SubTapestryError
from pirn_like.core._knot import Knot
from pirn_like.core._runtime import KnotRuntime

__all__ = ["SubTapestry"]


class SubTapestry(Knot):
    """Subclass and write ``async def process(self, <inputs>, **_) -> Knot``.

    Inside ``process`` build the inner pipeline from the input values (knots built
    there register into a fresh inner tapestry) and return its terminal knot. The
    inner graph runs as a child run (``parent_run_id`` = the outer run) in the same
    history; the terminal's output is this knot's output. If the inner run does not
    succeed, this knot fails with ``SubTapestryError``.
    """

    _execution = "custom"

    async def _execute(self, kwargs: dict[str, Any], runtime: KnotRuntime) -> Any:
        async def build() -> object:
            return await self.process(**kwargs)  # type: ignore[attr-defined]

        result, sink = await runtime.run_inner(self, build)
        if not result.succeeded:
            errors = "; ".join(f"{e.knot_id}: {e.type}: {e.message}" for e in result.exceptions)
            raise SubTapestryError(
                f"inner run {result.run_id} of {self.id!r} {result.status.value}: {errors}"
            )
        if sink.id not in result.outputs:
            raise SubTapestryError(
                f"inner run {result.run_id} of {self.id!r}: terminal {sink.id!r} "
                f"ended {result.results[sink.id].outcome.value}"
            )
        return result.outputs[sink.id]
