"""What the explorer reads from a history: filtered run lists, runs, hash neighbours."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pirn_like.core._records import KnotLineage, RunRecord, RunResult, RunStatus
from pirn_like.core._stored_run import stored_run_result
from pirn_like.protocols import RunHistory

if TYPE_CHECKING:
    import networkx as nx

__all__ = [
    "NO_TRIGGER",
    "BadQuery",
    "HashNeighbours",
    "RunFilter",
    "find_runs",
    "hash_neighbours",
    "load_run",
    "trigger_kind",
]

NO_TRIGGER = "none"
"""The trigger kind of a run started directly (``tapestry.run``), not by a trigger."""
MAX_LIMIT = 500
_MAX_PAGES = 10
"""Pages of ``limit`` runs read at most to fill one filtered page."""
_MAX_HASH = 200


class BadQuery(ValueError):
    """A query parameter the explorer cannot use; the message names it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFilter:
    """Which runs the list shows: all of them match every field that is set."""

    status: RunStatus | None = None
    trigger: str | None = None
    after: datetime | None = None
    before: datetime | None = None
    limit: int = 50

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> RunFilter:
        """Read ``status``, ``trigger``, ``after``, ``before`` (ISO 8601, naive = UTC)
        and ``limit`` from query parameters; empty ones are unset."""
        raw_status = query.get("status") or None
        status = None
        if raw_status is not None:
            try:
                status = RunStatus(raw_status)
            except ValueError:
                choices = ", ".join(s.value for s in RunStatus)
                raise BadQuery(f"status must be one of {choices}; got {raw_status!r}") from None
        raw_limit = query.get("limit") or "50"
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
            raise BadQuery(f"limit must be a whole number from 1 to {MAX_LIMIT}; got {raw_limit!r}")
        return cls(
            status=status,
            trigger=query.get("trigger") or None,
            after=_instant(query, "after"),
            before=_instant(query, "before"),
            limit=int(raw_limit),
        )

    def admits(self, run: RunRecord) -> bool:
        """Whether ``run`` matches the fields this filter checks after the query."""
        if self.trigger is not None and trigger_kind(run) != self.trigger:
            return False
        return self.after is None or run.started_at >= self.after


def trigger_kind(run: RunRecord) -> str:
    """The kind of trigger that started ``run``, or ``NO_TRIGGER``."""
    kind = (run.trigger or {}).get("kind")
    return str(kind) if kind else NO_TRIGGER


async def find_runs(history: RunHistory, wanted: RunFilter) -> tuple[list[RunRecord], bool]:
    """Runs matching ``wanted``, newest first, and whether older matches may exist.

    The history filters by status and start time; trigger kind and the lower time
    bound are checked here, reading further pages (a bounded number) to fill the list.
    """
    found: list[RunRecord] = []
    before = wanted.before
    for _ in range(_MAX_PAGES):
        page = await history.list_runs(
            limit=wanted.limit, status=wanted.status, started_before=before
        )
        for run in page:
            if wanted.after is not None and run.started_at < wanted.after:
                return found, False  # newest first: everything further is older still
            if wanted.admits(run):
                found.append(run)
                if len(found) == wanted.limit:
                    return found, True
        if len(page) < wanted.limit:
            return found, False
        before = page[-1].started_at
    return found, True


async def load_run(history: RunHistory, run_id: str) -> tuple[RunRecord, RunResult] | None:
    """The run's record and a ``RunResult`` rebuilt from its lineage and the exception
    records it kept (no values: a history keeps none), or None if history has no such run."""
    record = await history.get_run(run_id)
    if record is None:
        return None
    return record, stored_run_result(record, await history.get_lineage(run_id))


@dataclass(frozen=True, slots=True, kw_only=True)
class HashNeighbours:
    """Knot executions around one content hash."""

    producers: list[KnotLineage]
    """Executions whose output has the hash (upstream lies through their inputs)."""
    consumers: list[KnotLineage]
    """Executions that took the hash as an input (downstream lies through their outputs)."""
    provenance: nx.DiGraph[str]
    """Everything upstream and downstream of the hash, over any number of hops and runs."""


async def hash_neighbours(history: RunHistory, content_hash: str) -> HashNeighbours:
    """Who produced and who consumed ``content_hash``, and its whole provenance graph."""
    if not 0 < len(content_hash) <= _MAX_HASH or not content_hash.isprintable():
        raise BadQuery(f"hash must be 1 to {_MAX_HASH} printable characters")
    return HashNeighbours(
        producers=await history.query_lineage_by_output_hash(content_hash),
        consumers=await history.query_lineage_by_input_hash(content_hash),
        provenance=await history.provenance(content_hash),
    )


def _instant(query: Mapping[str, str], name: str) -> datetime | None:
    raw = query.get(name) or None
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise BadQuery(
            f"{name} must be an ISO 8601 time such as 2026-01-31T12:00; got {raw!r}"
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
