"""Runs and lineage kept in memory, indexed for lineage queries."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Self

from pirn_like.backends._queries import LineageQueries
from pirn_like.core._records import KnotLineage, RunRecord, RunStatus

__all__ = ["InMemoryHistory"]


class InMemoryHistory(LineageQueries):
    """The default RunHistory. Lost when the process ends; indexes every hash it sees
    (lazily, when it is next queried)."""

    def __init__(self) -> None:
        self._runs: dict[str, RunRecord] = {}
        self._by_run: defaultdict[str, list[KnotLineage]] = defaultdict(list)
        self._by_output: defaultdict[str, list[KnotLineage]] = defaultdict(list)
        self._by_input: defaultdict[str, list[KnotLineage]] = defaultdict(list)
        self._by_knot: defaultdict[str, list[KnotLineage]] = defaultdict(list)
        self._by_cache_key: defaultdict[str, list[KnotLineage]] = defaultdict(list)
        self._unindexed: list[KnotLineage] = []

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def record_run_started(self, run: RunRecord) -> None:
        self._runs[run.run_id] = run

    async def record_run_finished(self, run: RunRecord) -> None:
        self._runs[run.run_id] = run

    async def claim_run(self, run: RunRecord) -> bool:
        if run.run_id in self._runs:
            return False
        self._runs[run.run_id] = run
        return True

    async def record_lineage(self, records: Sequence[KnotLineage]) -> None:
        # Indexed on the first query after, not here: recording is on the run's path.
        self._unindexed.extend(records)

    def _index(self) -> None:
        pending, self._unindexed = self._unindexed, []
        for rec in pending:
            self._by_run[rec.run_id].append(rec)
            self._by_knot[rec.knot_id].append(rec)
            if rec.cache_key is not None:
                self._by_cache_key[rec.cache_key].append(rec)
            if rec.output_hash is not None:
                self._by_output[rec.output_hash].append(rec)
            for h in set(rec.parent_input_hashes.values()):
                self._by_input[h].append(rec)

    async def get_run(self, run_id: str) -> RunRecord | None:
        return self._runs.get(run_id)

    async def list_runs(
        self,
        *,
        limit: int = 100,
        status: RunStatus | None = None,
        started_before: datetime | None = None,
    ) -> list[RunRecord]:
        runs = [
            r
            for r in self._runs.values()
            if (status is None or r.status is status)
            and (started_before is None or r.started_at < started_before)
        ]
        runs.sort(key=lambda r: r.started_at, reverse=True)
        return runs[:limit]

    async def delete_runs(self, run_ids: Sequence[str]) -> int:
        doomed = {r for r in run_ids if r in self._runs}
        if not doomed:
            return 0
        self._index()
        for run_id in doomed:
            del self._runs[run_id]
            self._by_run.pop(run_id, None)
        for index in (self._by_output, self._by_input, self._by_knot, self._by_cache_key):
            for key in list(index):
                kept = [rec for rec in index[key] if rec.run_id not in doomed]
                if kept:
                    index[key] = kept
                else:
                    del index[key]
        return len(doomed)

    async def get_lineage(self, run_id: str) -> list[KnotLineage]:
        self._index()
        return list(self._by_run.get(run_id, ()))

    async def query_lineage_by_output_hash(self, output_hash: str) -> list[KnotLineage]:
        self._index()
        return list(self._by_output.get(output_hash, ()))

    async def query_lineage_by_input_hash(self, input_hash: str) -> list[KnotLineage]:
        self._index()
        return list(self._by_input.get(input_hash, ()))

    async def query_lineage_by_knot_id(self, knot_id: str) -> list[KnotLineage]:
        self._index()
        return list(self._by_knot.get(knot_id, ()))

    async def query_lineage_by_cache_key(self, cache_key: str) -> list[KnotLineage]:
        self._index()
        return list(self._by_cache_key.get(cache_key, ()))
