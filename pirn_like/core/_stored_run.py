"""A ``RunResult`` rebuilt from what a history keeps, for views of past runs."""

from __future__ import annotations

from collections.abc import Sequence

from pirn_like.core._records import KnotLineage, RunRecord, RunResult

__all__ = ["stored_run_result"]


def stored_run_result(record: RunRecord, lineage: Sequence[KnotLineage]) -> RunResult:
    """The run ``record`` describes, with its ``lineage`` and the exception records
    history kept (see ``stored_exceptions``). A history keeps no values, so ``outputs``
    and ``results`` are empty: the result draws (graph, timeline, Mermaid, error
    details) like the one the run returned."""
    return RunResult(
        run_id=record.run_id,
        status=record.status,
        terminals_requested=record.terminals,
        outputs={},
        results={},
        skipped=[],
        exceptions=list(record.exceptions),
        lineage=list(lineage),
        started_at=record.started_at,
        finished_at=record.finished_at or record.started_at,
        dispatcher="",
        trigger=record.trigger,
    )
