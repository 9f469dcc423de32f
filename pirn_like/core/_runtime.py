"""What built-in nodes may ask of the engine while they execute."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pirn_like._ids import ContentHash, RunId
from pirn_like.core._hashing import combine_hashes
from pirn_like.core._knot import Knot, ProcessSpec
from pirn_like.core._records import RunResult
from pirn_like.core._results import Result

__all__ = ["ItemTarget", "KnotRuntime"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemTarget:
    """The code a fan-out runs once per item, with its identity for lineage."""

    target: Callable[..., Any]
    spec: ProcessSpec
    knot_class: str
    identity: str

    def config_hash_under(self, owner: Knot) -> ContentHash:
        """The config hash each item's lineage record carries when ``owner`` fans out."""
        return combine_hashes((owner.config_hash, self.identity))


class KnotRuntime(Protocol):
    """The engine's side of a custom-executing knot (Map, SubTapestry, ...)."""

    @property
    def run_id(self) -> RunId: ...

    async def run_items(
        self,
        owner: Knot,
        each: ItemTarget,
        items: Sequence[tuple[str, Mapping[str, object]]],
        *,
        shared: Mapping[str, object],
        shared_hashes: Mapping[str, ContentHash],
        limit: int,
    ) -> list[Result[Any]]:
        """Run ``each`` once per item as its own knot execution with its own lineage.

        Item ``label`` makes the execution's knot id ``<owner id>[<label>]``; its
        inputs are ``shared`` plus the item's own mapping. Results keep item order.
        """
        ...

    async def run_inner(
        self, owner: Knot, build: Callable[[], Awaitable[object]]
    ) -> tuple[RunResult, Knot]:
        """Build a nested graph with ``build`` (knots built inside it are registered into
        a fresh tapestry; it returns the terminal) and run it as a child run."""
        ...
