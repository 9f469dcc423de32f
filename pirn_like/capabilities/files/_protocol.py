"""What the file knots need from the outside: a ledger of past executions, a transform."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, TypeAlias

from pirn_like.capabilities.files._models import FileRef
from pirn_like.core._records import KnotLineage

__all__ = ["Ledger", "Transform"]


class Ledger(Protocol):
    """Where ``MapFiles`` looks up which files it already processed.

    Every ``RunHistory`` is one (pass ``tapestry.history``): a file counts as
    processed when a succeeded lineage record of the map's item consumed exactly
    that file version with the same code and shared inputs.
    """

    async def query_lineage_by_input_hash(self, input_hash: str) -> list[KnotLineage]: ...


Transform: TypeAlias = Callable[[FileRef], bytes | str | Awaitable[bytes | str]]
"""What ``Mirror`` runs per file: the input file in, the output's content out
(``str`` is written as UTF-8). Sync transforms run in a worker thread."""
