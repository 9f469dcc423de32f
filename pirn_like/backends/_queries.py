"""Lineage queries every RunHistory gets from its primitive queries.

``LineageQueries`` is a mixin: a history class inherits it and implements the
primitives of the ``RunHistory`` protocol (``get_lineage``, ``query_lineage_by_*``,
``list_runs``, ``delete_runs``); the derived queries (cache-miss explanations,
cross-run provenance, derivation paths, retention) are written once here.
"""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pirn_like.core._records import CacheMiss, KnotLineage, RetentionReport, RunStatus

if TYPE_CHECKING:
    import networkx as nx

    from pirn_like.protocols import DataStore, RunHistory

__all__ = ["LineageQueries", "execution_node"]

_RETENTION_PAGE = 1000


def execution_node(rec: KnotLineage) -> str:
    """The provenance-graph node of one execution: ``exec:<run id>/<knot id>``."""
    return f"exec:{rec.run_id}/{rec.knot_id}"


class LineageQueries:
    """Derived queries over a RunHistory's primitives (see the module docs)."""

    async def explain_miss(self: RunHistory, run_id: str, knot_id: str) -> CacheMiss | None:
        """Why ``knot_id`` was executed in ``run_id`` instead of replayed from the cache.

        ``None`` when that execution was a cache hit. Otherwise the ``CacheMiss`` names
        what changed since the nearest earlier execution of the same knot: ``code``,
        ``config``, ``version``, ``constant:<name>`` or ``input:<name>``. Raises
        ``KeyError`` when the run has no record of the knot.
        """
        records = await self.query_lineage_by_knot_id(knot_id)
        position = _last_index(records, run_id)
        if position is None:
            raise KeyError(f"run {run_id!r} has no lineage record of knot {knot_id!r}")
        this = records[position]
        if this.cached_from is not None:
            return None
        if this.cache_key is None:
            return CacheMiss(
                run_id, knot_id, "not_cached", (), None,
                f"knot {knot_id!r} has no cache policy: set KnotConfig(cache=True) to memoize it",
            )  # fmt: skip
        earlier = [r for r in records[:position] if r.cache_key_parts is not None]
        if not earlier:
            return CacheMiss(
                run_id, knot_id, "first_execution", (), None,
                f"knot {knot_id!r} had never been executed before run {run_id!r}",
            )  # fmt: skip
        previous = earlier[-1]
        changed = _changed_parts(previous, this)
        if changed:
            message = (
                f"knot {knot_id!r} changed since run {previous.run_id!r}: {', '.join(changed)}"
            )
            return CacheMiss(run_id, knot_id, "changed", changed, previous, message)
        if previous.outcome.value != "ok":
            return CacheMiss(
                run_id, knot_id, "failed", (), previous,
                f"the execution with the same key in run {previous.run_id!r} did not succeed "
                f"({previous.outcome.value}); failures are never replayed",
            )  # fmt: skip
        return CacheMiss(
            run_id, knot_id, "expired_or_value_gone", (), previous,
            f"the execution with the same key in run {previous.run_id!r} was older than the "
            "cache TTL, or its output was no longer in the data store",
        )  # fmt: skip

    async def provenance(self: RunHistory, content_hash: str) -> nx.DiGraph[str]:
        """Lineage across runs around one value, as a networkx ``DiGraph``.

        Nodes are values (their content hash; attribute ``kind="value"``) and
        executions (``exec:<run id>/<knot id>``; ``kind="execution"``, ``record`` the
        ``KnotLineage``). Edges run from each input value to the execution that
        consumed it (attribute ``input``: the input's name) and from an execution to
        the value it produced. The graph holds everything upstream of the value (how
        it was made) and everything downstream (what was derived from it):
        ``nx.descendants(g, h)`` answers "what must be recomputed if ``h`` was wrong".
        """
        import networkx as nx

        graph: nx.DiGraph[str] = nx.DiGraph(root=content_hash)
        graph.add_node(content_hash, kind="value")
        await _walk(self, graph, content_hash, upstream=True)
        await _walk(self, graph, content_hash, upstream=False)
        return graph

    async def lineage_path(
        self: RunHistory, source_hash: str, target_hash: str
    ) -> list[KnotLineage]:
        """How ``target_hash`` was derived from ``source_hash``: the executions on the
        shortest derivation path, first to last; empty if it was not derived from it."""
        import networkx as nx

        graph: nx.DiGraph[str] = nx.DiGraph()
        graph.add_node(target_hash, kind="value")
        await _walk(self, graph, target_hash, upstream=True)
        if source_hash not in graph:
            return []
        path = nx.shortest_path(graph, source_hash, target_hash)
        return [graph.nodes[n]["record"] for n in path if graph.nodes[n]["kind"] == "execution"]

    async def delete_runs_older_than(
        self: RunHistory,
        age: timedelta,
        *,
        data_store: DataStore | None = None,
        now: datetime | None = None,
    ) -> RetentionReport:
        """Delete finished runs that started more than ``age`` ago, with their lineage.

        Runs still marked running are kept (they may be resumed). With ``data_store``,
        values the deleted runs produced are deleted too, unless lineage that remains
        still references them (as an input or an output), so no remaining record
        points at a value that was dropped because of retention.
        """
        cutoff = (now or datetime.now(UTC)) - age
        doomed: list[str] = []
        produced: set[str] = set()
        seen: set[str] = set()
        while True:
            page = await self.list_runs(limit=_RETENTION_PAGE, started_before=cutoff)
            fresh = [r for r in page if r.run_id not in seen]
            seen.update(r.run_id for r in page)
            for run in fresh:
                if run.status is RunStatus.RUNNING:
                    continue
                doomed.append(run.run_id)
                for rec in await self.get_lineage(run.run_id):
                    if rec.output_hash is not None:
                        produced.add(rec.output_hash)
            if len(page) < _RETENTION_PAGE or not fresh:
                break
            cutoff = min(r.started_at for r in page)
        await self.delete_runs(doomed)
        deleted: list[str] = []
        kept: list[str] = []
        if data_store is not None:
            for value_hash in sorted(produced):
                if await self.query_lineage_by_output_hash(
                    value_hash
                ) or await self.query_lineage_by_input_hash(value_hash):
                    kept.append(value_hash)
                elif await data_store.delete(value_hash):  # type: ignore[arg-type]
                    deleted.append(value_hash)
        return RetentionReport(tuple(doomed), tuple(deleted), tuple(kept))


def _last_index(records: list[KnotLineage], run_id: str) -> int | None:
    for i in range(len(records) - 1, -1, -1):
        if records[i].run_id == run_id:
            return i
    return None


def _changed_parts(previous: KnotLineage, this: KnotLineage) -> tuple[str, ...]:
    before = dict(previous.cache_key_parts or {})
    after = dict(this.cache_key_parts or {})
    # Parts first in a fixed order (code explains more than config, which constants
    # also change), then the inputs by name.
    order = ["code", "version", *sorted(k for k in before.keys() | after.keys() if ":" in k)]
    changed = [k for k in order if before.get(k) != after.get(k)]
    if not changed and before.get("config") != after.get("config"):
        changed.append("config")
    inputs_before, inputs_after = previous.parent_input_hashes, this.parent_input_hashes
    for name in sorted(inputs_before.keys() | inputs_after.keys()):
        if inputs_before.get(name) != inputs_after.get(name):
            changed.append(f"input:{name}")
    return tuple(changed)


async def _walk(history: RunHistory, graph: nx.DiGraph[str], start: str, *, upstream: bool) -> None:
    """Add to ``graph`` every execution and value reachable from ``start`` in one direction."""
    queue: deque[str] = deque([start])
    visited = {start}
    while queue:
        value = queue.popleft()
        if upstream:
            records = await history.query_lineage_by_output_hash(value)
        else:
            records = await history.query_lineage_by_input_hash(value)
        for rec in records:
            node = execution_node(rec)
            graph.add_node(
                node, kind="execution", record=rec, run_id=rec.run_id, knot_id=rec.knot_id
            )
            if rec.output_hash is not None:
                graph.add_node(rec.output_hash, kind="value")
                graph.add_edge(node, rec.output_hash)
            for name, h in rec.parent_input_hashes.items():
                graph.add_node(h, kind="value")
                graph.add_edge(h, node, input=name)
            nxt: list[Any] = (
                list(rec.parent_input_hashes.values()) if upstream else [rec.output_hash]
            )
            for h in nxt:
                if h is not None and h not in visited:
                    visited.add(h)
                    queue.append(h)
