"""One run of a plan: readiness scheduling, error policies, lineage and events.

A knot starts as soon as its own parents have settled: each node keeps a count of
unsettled parents, and the parent that settles last starts it. There are no waves,
so a slow knot never holds back an unrelated one.
"""

from __future__ import annotations

import logging
import math
import threading
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
from anyio.abc import TaskStatus

from pirn_like._errors import (
    DuplicateRunError,
    ParentFailedError,
    SerializationError,
    UnhashableValueError,
    WiringError,
)
from pirn_like._ids import ContentHash, KnotId, RunId
from pirn_like._version import __version__
from pirn_like.core._config import ErrorPolicy
from pirn_like.core._events import KnotFinished, KnotStarted, RunEvent, RunFinished, RunStarted
from pirn_like.core._hashing import content_hash
from pirn_like.core._knot import Knot, Ref, registering_into
from pirn_like.core._plan import PlanNode, RunPlan, build_plan, make_node, wire
from pirn_like.core._records import (
    KnotLineage,
    RunRecord,
    RunRequest,
    RunResult,
    RunStatus,
    stored_exceptions,
)
from pirn_like.core._results import (
    Err,
    ExceptionRecord,
    Ok,
    Outcome,
    Result,
    Skipped,
    SkipReason,
)
from pirn_like.core._runtime import ItemTarget
from pirn_like.engine._execute import Attempts, CallSite, Limits, call_knot
from pirn_like.engine._nursery import Nursery, open_nursery
from pirn_like.protocols import DataStore, Dispatcher, RunHistory, TapestryStore

__all__ = ["Resume", "RunSettings", "check_dispatchers", "execute_run", "new_run_id"]

_log = logging.getLogger("pirn_like.engine")
_now = partial(datetime.now, UTC)
_FLUSH_BATCH = 512
_FLUSH_INTERVAL = 1.0
_CHECKPOINT_EVERY = 256


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSettings:
    """The parts and limits one run uses."""

    dispatcher: Dispatcher
    history: RunHistory
    data_store: DataStore | None = None
    emit: Callable[[RunEvent], None] | None = None
    """Hands an event to the emitters without waiting (``EmitterHub.send``)."""
    max_concurrency: int | None = None
    tag_limits: Mapping[str, int] = field(default_factory=dict[str, int])
    timeout: float | None = None
    store: TapestryStore | None = None
    """Watched for new knots when the run is extensible."""
    new_store: Callable[[], TapestryStore] | None = None
    """Makes the store of a nested run (SubTapestry)."""
    checkpoint: bool = False
    """Start a knot's children only once its lineage record is in history."""
    dispatchers: Mapping[str, Dispatcher] = field(default_factory=dict[str, Dispatcher])
    """Dispatchers knots pin by name (``KnotConfig(dispatcher="...")``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Resume:
    """What a resumed run starts from: its records so far and the outputs to replay."""

    started_at: datetime
    prior: Sequence[KnotLineage]
    outputs: Mapping[KnotId, tuple[object, ContentHash]]
    """Output value and hash of each knot that finished ``Ok`` before the interruption."""


_RESULT_TYPES = frozenset({Ok, Err, Skipped})

_Memo = tuple[ContentHash, RunId | None, Mapping[str, ContentHash]]
"""A memoized execution's cache key, the run it was replayed from, and the key's parts."""
_NO_MEMO: tuple[None, None, None] = (None, None, None)
_new_tuple = tuple.__new__
_unstorable_logged: set[type] = set()


class _NoNursery:
    def spawn(self, fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
        raise RuntimeError("the run has not started")


_NO_NURSERY: Any = _NoNursery()


def _to_result(knot_id: KnotId, value: Any) -> tuple[Result[Any], ContentHash | None]:
    """What a knot's code returned, as a result with its output hash.

    A plain value becomes ``Ok``; a returned ``Ok``/``Err``/``Skipped`` is kept; an
    output with no codec becomes an ``Err`` naming the knot and the type.
    """
    if type(value) is Ok:
        value = value.value
    elif type(value) in _RESULT_TYPES:
        return value, None
    try:
        return Ok(value), content_hash(value)
    except UnhashableValueError as exc:
        error = exc.located(f"knot {knot_id!r} output")
        return Err(ExceptionRecord.from_exception(error, knot_id=knot_id)), None


def _failure_hash(result: Result[Any]) -> ContentHash:
    if isinstance(result, Err):
        return content_hash(("err", result.record.type, result.record.message))
    assert isinstance(result, Skipped)
    return content_hash(("skipped", result.reason.value))


class _Run:
    """The mutable state of one run; never shared between runs."""

    def __init__(
        self,
        plan: RunPlan,
        request: RunRequest,
        run_id: RunId,
        settings: RunSettings,
        params: Mapping[str, tuple[object, ContentHash]],
        extensible: bool,
        terminals_explicit: bool,
    ) -> None:
        self.plan = plan
        self.request = request
        self._run_id = run_id
        self.settings = settings
        self.params = params
        self.dispatcher = settings.dispatcher
        self.dispatcher_name = settings.dispatcher.name
        self.limits = Limits.create(settings.max_concurrency, settings.tag_limits)
        self.has_limits = self.limits.run is not None or bool(self.limits.tags)
        # Plain async knots (see PlanNode) are awaited directly when the dispatcher
        # would only await them in this task anyway.
        inline = getattr(settings.dispatcher, "inline_async", False)
        self.inline_async = inline and not self.has_limits
        n = len(plan.nodes)
        self.nodes: list[PlanNode] = list(plan.nodes)
        self.children: list[list[int]] | tuple[Sequence[int], ...] = (
            [list(c) for c in plan.children] if extensible else plan.children
        )
        self.index: dict[KnotId, int] = dict(plan.index) if extensible else {}
        self.terminals: list[KnotId] = list(plan.terminals)
        self.terminals_explicit = terminals_explicit
        self.pending = [node.parent_count for node in plan.nodes]
        self.results: list[Result[Any] | None] = [None] * n
        self.hashes: list[ContentHash | None] = [None] * n
        self.lineage: list[KnotLineage] = []
        self.flushed = 0  # lineage[:flushed] is in history
        self.flush_at = _FLUSH_BATCH
        self.flush_wanted = anyio.Event()
        self.flush_lock = anyio.Lock()
        self.data_store = settings.data_store
        self.durable = settings.checkpoint
        self.awaiting_checkpoint: list[int] = []
        self.checkpointing = False
        self.memo: dict[ContentHash, tuple[object, ContentHash]] = {}
        self.roots_override: list[int] | None = None
        self.exceptions: list[ExceptionRecord] = []
        self.nursery: Nursery = _NO_NURSERY
        self.ready: deque[int] = deque()
        self.pending_drivers = 0
        self.send: Callable[[RunEvent], None] | None = None
        self.loop_thread = threading.get_ident()
        self.token: anyio.lowlevel.EventLoopToken | None = None

    @property
    def run_id(self) -> RunId:
        return self._run_id

    @property
    def history(self) -> RunHistory:
        return self.settings.history

    # -- scheduling -------------------------------------------------------------

    def start_ready(self, nursery: Nursery) -> None:
        self.nursery = nursery
        self.ready.extend(self.plan.roots if self.roots_override is None else self.roots_override)
        self._ensure_driver()

    def replay(self, resume: Resume) -> None:
        """Settle the knots that finished before the interruption, in topological order;
        a knot is replayed only if all its parents were (a re-executed parent may
        produce something else)."""
        self.lineage.extend(resume.prior)
        self.flushed = len(self.lineage)
        self.flush_at = self.flushed + _FLUSH_BATCH
        replayed = [False] * len(self.nodes)
        for i, node in enumerate(self.nodes):
            kept = resume.outputs.get(node.knot.id)
            if kept is None or not all(replayed[p] for _, p in node.inputs):
                continue
            replayed[i] = True
            self.results[i] = Ok(kept[0])
            self.hashes[i] = kept[1]
            for c in self.children[i]:
                self.pending[c] -= 1
        self.roots_override = [
            i for i, done in enumerate(replayed) if not done and not self.pending[i]
        ]

    def _ensure_driver(self) -> None:
        """Keep one driver task pending while ready knots wait.

        A driver takes the next ready knot and runs it; before it does, it makes sure
        another driver is pending, so if this knot blocks the next one still starts
        at once. Knots that finish without suspending run back to back in one task:
        a fan-out of 10,000 quick knots needs two tasks, not 10,000.
        """
        if self.ready and not self.pending_drivers:
            self.pending_drivers += 1
            self.nursery.spawn(self.drive)

    async def drive(self) -> None:
        self.pending_drivers -= 1
        ready = self.ready
        budget = _CHECKPOINT_EVERY
        while ready:
            i = ready.popleft()
            self._ensure_driver()
            await self.run_node(i)
            budget -= 1
            if not budget:  # let cancellation and other tasks in during long sync stretches
                budget = _CHECKPOINT_EVERY
                await anyio.lowlevel.checkpoint()

    async def run_node(self, i: int) -> None:
        """Run node ``i`` and queue the children it made ready."""
        node = self.nodes[i]
        knot = node.knot
        started = _now()
        if self.send is not None:
            self.send(KnotStarted(self.run_id, knot.id, started))
        attempts = 1
        out_hash: ContentHash | None = None
        memo: _Memo | None = None
        try:
            if node.param is not None:
                value, out_hash = self.params[node.param]
                result: Result[Any] | None = Ok(value)
                input_hashes: dict[str, ContentHash] = {}
            else:
                kwargs, input_hashes, result = self._gather(node)
                if result is not None:
                    pass  # settled by the error policy
                elif node.direct is not None and self.inline_async:
                    # Plain async knot: await it right here (the hot path).
                    try:
                        result, out_hash = self._as_result(knot, await node.direct(**kwargs))
                    except Exception as exc:
                        result = self._err(knot, exc)
                elif node.cache is not None:
                    result, out_hash, attempts, memo = await self._memoized(
                        node, kwargs, input_hashes
                    )
                else:
                    result, out_hash, attempts = await self._call(node, kwargs)
        except anyio.get_cancelled_exc_class():
            self._record(node, started, Skipped(SkipReason.BY_KNOT), None, {}, 0, cancelled=True)
            raise
        result = self._record(node, started, result, out_hash, input_hashes, attempts, memo)
        self.results[i] = result
        self.hashes[i] = out_hash
        if out_hash is not None and self.data_store is not None and attempts and node.param is None:
            await self._keep(out_hash, result.value)  # type: ignore[union-attr]
        if self.durable and self.children[i]:
            # Children start once this knot's record is durable: a crash after they
            # start never loses the record resume needs to skip this knot.
            self.awaiting_checkpoint.append(i)
            if not self.checkpointing:
                self.checkpointing = True
                self.nursery.spawn(self.checkpoint)
            return
        pending = self.pending  # _release, inlined: this is the per-knot hot path
        ready = self.ready
        for c in self.children[i]:
            pending[c] -= 1
            if not pending[c]:
                ready.append(c)

    def _release(self, i: int) -> None:
        """Node ``i`` has settled: queue the children it made ready."""
        pending = self.pending
        ready = self.ready
        for c in self.children[i]:
            pending[c] -= 1
            if not pending[c]:
                ready.append(c)

    async def checkpoint(self) -> None:
        """Write finished knots' records, then release their children (group commit:
        knots finishing while a write is in flight share the next one)."""
        try:
            while self.awaiting_checkpoint:
                batch, self.awaiting_checkpoint = self.awaiting_checkpoint, []
                await self.flush()
                for i in batch:
                    self._release(i)
                self._ensure_driver()
        finally:
            self.checkpointing = False

    async def _keep(self, out_hash: ContentHash, value: object) -> None:
        """Put an output into the data store; a value the store cannot hold is logged
        (memoization and resume then execute its knot again), never a failed run."""
        assert self.data_store is not None
        try:
            await self.data_store.put(out_hash, value)
        except SerializationError as exc:
            kind = type(value)
            if kind not in _unstorable_logged:
                _unstorable_logged.add(kind)
                _log.warning("run %s: values of type %s are not kept: %s", self.run_id, kind, exc)

    # -- memoization ------------------------------------------------------------

    async def _memoized(
        self, node: PlanNode, kwargs: dict[str, Any], input_hashes: dict[str, ContentHash]
    ) -> tuple[Result[Any], ContentHash | None, int, _Memo]:
        """Replay the output of an earlier execution with the same cache key, or call
        the knot and remember its output under that key."""
        spec = node.cache
        assert spec is not None
        key = spec.key(input_hashes)
        hit = await self._cache_lookup(key, spec.policy.ttl)
        if hit is not None:
            value, out_hash, origin = hit
            return Ok(value), out_hash, 0, (key, origin, spec.parts)
        result, out_hash, attempts = await self._call(node, kwargs)
        if type(result) is Ok and out_hash is not None:
            self.memo[key] = (result.value, out_hash)
        return result, out_hash, attempts, (key, None, spec.parts)

    async def _cache_lookup(
        self, key: ContentHash, ttl: float | None
    ) -> tuple[object, ContentHash, RunId] | None:
        in_run = self.memo.get(key)
        if in_run is not None:
            return in_run[0], in_run[1], self.run_id
        store = self.data_store
        assert store is not None  # checked before the run starts
        oldest = _now() - timedelta(seconds=ttl) if ttl is not None else None
        for rec in reversed(await self.history.query_lineage_by_cache_key(key)):
            # Only original executions count (a replay's time says nothing of its age).
            if rec.outcome is not Outcome.OK or rec.output_hash is None or rec.cached_from:
                continue
            if oldest is not None and rec.finished_at < oldest:
                continue
            try:
                value = await store.get(rec.output_hash)
            except KeyError:
                continue
            # A value read back must hash as recorded: a lossy store never yields a hit.
            if content_hash(value) != rec.output_hash:
                _log.warning(
                    "run %s: stored value %s does not hash as recorded; executing %r again",
                    self.run_id,
                    rec.output_hash,
                    rec.knot_id,
                )
                continue
            return value, rec.output_hash, rec.run_id
        return None

    def _gather(
        self, node: PlanNode
    ) -> tuple[dict[str, Any], dict[str, ContentHash], Result[Any] | None]:
        """The node's call arguments and input hashes, and its result if the error
        policy settles it without running (a failed or skipped parent)."""
        knot = node.knot
        policy = knot.config.error_policy
        receive = policy is ErrorPolicy.RECEIVE_ERRORS
        results = self.results
        hashes = self.hashes
        kwargs: dict[str, Any] = dict(knot.constants)
        input_hashes: dict[str, ContentHash] = {}
        failed: tuple[str, Result[Any]] | None = None
        for name, p in node.inputs:
            r = results[p]
            assert r is not None
            if type(r) is Ok:
                h = hashes[p]
                assert h is not None
                input_hashes[name] = h
                kwargs[name] = r if receive else r.value
            else:
                input_hashes[name] = _failure_hash(r)
                kwargs[name] = r
                if failed is None:
                    failed = (name, r)
        if failed is None or receive:
            return kwargs, input_hashes, None
        name, r = failed
        what = "failed" if isinstance(r, Err) else "was skipped"
        detail = f"parent {node.parent_ids[name]!r} (input {name!r}) {what}"
        if policy is ErrorPolicy.REQUIRE_ALL_PARENTS:
            error = ParentFailedError(f"knot {knot.id!r} requires all parents: {detail}")
            return kwargs, input_hashes, self._err(knot, error)
        reason = SkipReason.PARENT_FAILED if isinstance(r, Err) else SkipReason.PARENT_SKIPPED
        return kwargs, input_hashes, Skipped(reason, detail)

    async def _call(
        self, node: PlanNode, kwargs: dict[str, Any]
    ) -> tuple[Result[Any], ContentHash | None, int]:
        """Run a knot through its dispatcher (limits, retries, timeout, validation) or
        its own custom execution."""
        knot = node.knot
        attempts = Attempts()
        try:
            if knot._execution == "custom":
                attempts.count = 1
                value = await knot._execute(kwargs, self)  # type: ignore[attr-defined]
            else:
                spec = type(knot)._spec
                assert spec is not None
                site = CallSite(
                    run_id=self.run_id,
                    knot_id=knot.id,
                    target=knot.target(),
                    spec=spec,
                    config=knot.config,
                    dispatcher=self.dispatcher_for(knot),
                    limiters=self.limits.for_knot(knot) if self.has_limits else _knot_limits(knot),
                )
                value = await call_knot(site, kwargs, attempts)
        except Exception as exc:
            return self._err(knot, exc), None, attempts.count
        result, out_hash = self._as_result(knot, value)
        return result, out_hash, attempts.count

    def dispatcher_for(self, knot: Knot) -> Dispatcher:
        """The run's dispatcher, or the one the knot's config pins by name."""
        name = knot.config.dispatcher
        if name is None:
            return self.dispatcher
        pinned = self.settings.dispatchers.get(name)
        if pinned is None:  # a knot added mid-run: the plan check did not see it
            raise WiringError(_unknown_dispatcher(knot.id, name, self.settings.dispatchers))
        return pinned

    def _err(self, knot: Knot, exc: BaseException) -> Err:
        record = ExceptionRecord.from_exception(exc, knot_id=knot.id)
        self.exceptions.append(record)
        return Err(record)

    def _as_result(self, knot: Knot, value: Any) -> tuple[Result[Any], ContentHash | None]:
        result, out_hash = _to_result(knot.id, value)
        if type(result) is Err:
            self.exceptions.append(result.record)
        return result, out_hash

    # -- recording --------------------------------------------------------------

    def _record(
        self,
        node: PlanNode,
        started: datetime,
        result: Result[Any],
        out_hash: ContentHash | None,
        input_hashes: dict[str, ContentHash],
        attempts: int,
        memo: _Memo | None = None,
        *,
        cancelled: bool = False,
    ) -> Result[Any]:
        """Append the node's lineage; returns its result as downstream sees it."""
        knot = node.knot
        if node.optional and type(result) is Err:
            self.exceptions.remove(result.record)
            rec = result.record
            result = Skipped(SkipReason.OPTIONAL_FAILED, f"{rec.type}: {rec.message} [{rec.id}]")
            error_id: str | None = rec.id
        else:
            error_id = result.record.id if type(result) is Err else None
        self._append(
            knot.id,
            node.knot_class,
            node.config_hash,
            input_hashes,
            node.parent_ids,
            result,
            out_hash,
            error_id,
            self.dispatcher_name
            if knot.config.dispatcher is None
            else self.dispatcher_for(knot).name,
            started,
            attempts,
            cancelled,
            memo,
        )
        return result

    def _append(
        self,
        knot_id: KnotId,
        knot_class: str,
        config_hash: ContentHash,
        input_hashes: Mapping[str, ContentHash],
        parent_ids: Mapping[str, KnotId],
        result: Result[Any],
        out_hash: ContentHash | None,
        error_id: str | None,
        dispatcher: str,
        started: datetime,
        attempts: int,
        cancelled: bool,
        memo: _Memo | None = None,
    ) -> KnotLineage:
        skipped = type(result) is Skipped and not cancelled
        cache = memo if memo is not None else _NO_MEMO
        # Built as a plain tuple of every field: the named tuple's own __new__ (a Python
        # function with defaults) would cost twice as much on this per-knot hot path.
        record: KnotLineage = _new_tuple(
            KnotLineage,
            (
                self.run_id,
                knot_id,
                knot_class,
                config_hash,
                input_hashes,
                parent_ids,
                out_hash,
                Outcome.CANCELLED if cancelled else result.outcome,
                result.reason if skipped else None,  # type: ignore[union-attr]
                result.detail if skipped else None,  # type: ignore[union-attr]
                error_id,
                dispatcher,
                started,
                _now(),
                attempts,
                __version__,
                cache[0],
                cache[1],
                cache[2],
            ),
        )
        lineage = self.lineage
        lineage.append(record)
        if len(lineage) >= self.flush_at:
            self.flush_wanted.set()
        if self.send is not None:
            self.send(KnotFinished(record, result.value if type(result) is Ok else None))
        return record

    async def flush(self) -> None:
        # One write at a time, in order: when flush() returns, every record appended
        # before the call is in history (checkpoints rely on it).
        async with self.flush_lock:
            batch = self.lineage[self.flushed :]
            self.flushed += len(batch)
            self.flush_at = self.flushed + _FLUSH_BATCH
            if batch:
                await self.history.record_lineage(batch)

    async def flush_periodically(self, *, task_status: TaskStatus[anyio.CancelScope]) -> None:
        with anyio.CancelScope() as scope:
            task_status.started(scope)
            while True:
                with anyio.move_on_after(_FLUSH_INTERVAL):
                    await self.flush_wanted.wait()
                self.flush_wanted = anyio.Event()
                await self.flush()

    # -- fan-out (Map, ZipMap, DictMap) ----------------------------------------

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
        results: list[Result[Any] | None] = [None] * len(items)
        item_config_hash = each.config_hash_under(owner)
        site = CallSite(
            run_id=self.run_id,
            knot_id=owner.id,
            target=each.target,
            spec=each.spec,
            config=owner.config,
            dispatcher=self.dispatcher_for(owner),
            limiters=self.limits.for_knot(owner) if self.has_limits else _knot_limits(owner),
        )
        work = iter(enumerate(items))

        async def worker() -> None:
            for index, (label, varying) in work:
                item_id = KnotId(f"{owner.id}[{label}]")
                started = _now()
                input_hashes = dict(shared_hashes)
                kwargs = dict(shared)
                attempts = Attempts()
                try:
                    for name, value in varying.items():
                        input_hashes[name] = content_hash(value)
                        kwargs[name] = value
                    value = await call_knot(replace(site, knot_id=item_id), kwargs, attempts)
                except Exception as exc:
                    record = ExceptionRecord.from_exception(exc, knot_id=item_id)
                    result: Result[Any] = Err(record)
                    out_hash = None
                else:
                    # Item failures are summed up by the owner's Err, not in run.exceptions.
                    result, out_hash = _to_result(item_id, value)
                    if out_hash is not None and self.data_store is not None:
                        await self._keep(out_hash, result.value)  # type: ignore[union-attr]
                results[index] = result
                self._append(
                    item_id,
                    each.knot_class,
                    item_config_hash,
                    input_hashes,
                    {},
                    result,
                    out_hash,
                    result.record.id if type(result) is Err else None,
                    site.dispatcher.name,
                    started,
                    attempts.count,
                    False,
                )

        async with anyio.create_task_group() as tg:
            for _ in range(min(limit, len(items))):
                tg.start_soon(worker)
        return [r for r in results if r is not None]

    # -- nested runs (SubTapestry) ---------------------------------------------

    async def run_inner(
        self, owner: Knot, build: Callable[[], Awaitable[object]]
    ) -> tuple[RunResult, Knot]:
        assert self.settings.new_store is not None
        store = self.settings.new_store()
        registrar = _StoreRegistrar(store)
        with registering_into(registrar):
            sink = await build()
        if not isinstance(sink, Knot):
            raise TypeError(
                f"{type(owner).__qualname__}.process must return the inner pipeline's "
                f"terminal knot, got {type(sink).__name__}"
            )
        registrar.register(sink)
        plan = build_plan(store.knots(), [sink])
        request = RunRequest(parent_run_id=self.run_id, parent_knot_id=owner.id)
        result = await execute_run(plan, request, self.settings, extensible=False)
        return result, sink

    # -- mid-run extension ------------------------------------------------------

    def on_registered(self, knot: Knot) -> None:
        """Store listener: merge a newly registered knot into this running plan."""
        if threading.get_ident() != self.loop_thread:
            anyio.from_thread.run_sync(self.extend, knot, token=self.token)
        else:
            self.extend(knot)

    def extend(self, knot: Knot) -> None:
        if knot.id in self.index or (self.terminals_explicit and knot.id not in self.terminals):
            return
        store = self.settings.store
        assert store is not None
        assert isinstance(self.children, list)
        for name, parent in knot.parents.items():
            resolved = store.get(parent.knot_id) if isinstance(parent, Ref) else parent
            if resolved is None:
                _log.warning(
                    "run %s: knot %r registered mid-run refers to unknown %r (input %r); ignored",
                    self.run_id,
                    knot.id,
                    parent,
                    name,
                )
                return
            if resolved.id not in self.index:
                self.extend(resolved)
        i = len(self.nodes)
        inputs, parent_ids, distinct = wire(knot, self.index, store.knots())
        waiting = [p for p in distinct if self.results[p] is None]
        self.nodes.append(make_node(i, knot, inputs, parent_ids, len(distinct)))
        self.children.append([])
        self.index[knot.id] = i
        self.pending.append(len(waiting))
        self.results.append(None)
        self.hashes.append(None)
        for p in waiting:
            self.children[p].append(i)
        if not self.terminals_explicit:
            self.terminals.append(knot.id)
        if not waiting:
            self.ready.append(i)
            self._ensure_driver()

    # -- summary ----------------------------------------------------------------

    def run_record(
        self, status: RunStatus, started: datetime, finished: datetime | None
    ) -> RunRecord:
        return RunRecord(
            run_id=self.run_id,
            status=status,
            started_at=started,
            finished_at=finished,
            terminals=list(self.terminals),
            parameter_hashes={name: h for name, (_, h) in self.params.items()},
            trigger=self.request.trigger,
            labels=self.request.labels,
            parent_run_id=self.request.parent_run_id,
            parent_knot_id=self.request.parent_knot_id,
            knot_count=len(self.lineage),
            error_ids=[e.id for e in self.exceptions],
            pirn_like_version=__version__,
            exceptions=stored_exceptions(self.exceptions),
        )

    def result(self, status: RunStatus, started: datetime, finished: datetime) -> RunResult:
        outputs: dict[str, Any] = {}
        results: dict[str, Any] = {}
        skipped: list[str] = []
        for node, r in zip(self.nodes, self.results, strict=True):
            if r is None:
                continue
            kid = node.knot.id
            results[kid] = r
            if type(r) is Ok:
                outputs[kid] = r.value
            elif type(r) is Skipped:
                skipped.append(kid)
        return RunResult.model_construct(
            run_id=self.run_id,
            status=status,
            terminals_requested=list(self.terminals),
            outputs=outputs,
            results=results,
            skipped=skipped,
            exceptions=list(self.exceptions),
            lineage=self.lineage,
            started_at=started,
            finished_at=finished,
            dispatcher=self.dispatcher_name,
            trigger=self.request.trigger,
            parent_run_id=self.request.parent_run_id,
        )


def _unknown_dispatcher(knot_id: str, name: str, known: Mapping[str, Dispatcher]) -> str:
    return (
        f"knot {knot_id!r} pins dispatcher {name!r}, but the tapestry has "
        f"{sorted(known) or 'none'}: pass Tapestry(dispatchers={{{name!r}: ...}})"
    )


def _knot_limits(knot: Knot) -> list[anyio.CapacityLimiter]:
    if knot.config.max_concurrency is None:
        return []
    return Limits().for_knot(knot)


class _StoreRegistrar:
    def __init__(self, store: TapestryStore) -> None:
        self._store = store

    def register(self, knot: Knot) -> Knot:
        self._store.add(knot)
        return knot


def check_dispatchers(plan: RunPlan, dispatchers: Mapping[str, Dispatcher]) -> None:
    """``WiringError`` naming the first knot that pins a dispatcher nobody registered."""
    for knot_id, name in plan.pinned:
        if name not in dispatchers:
            raise WiringError(_unknown_dispatcher(knot_id, name, dispatchers))


def new_run_id() -> RunId:
    """A fresh, unique run id."""
    return RunId(f"run-{uuid.uuid4().hex}")


async def execute_run(
    plan: RunPlan,
    request: RunRequest,
    settings: RunSettings,
    *,
    extensible: bool,
    terminals_explicit: bool = True,
    params: Mapping[str, tuple[object, ContentHash]] | None = None,
    resume: Resume | None = None,
) -> RunResult:
    """Execute ``plan`` to completion and record it; cancellation propagates.

    With ``resume``, the run continues an interrupted one under the same run id."""
    run_id = RunId(request.run_id) if request.run_id else new_run_id()
    if params is None:
        params = {name: (p.default, content_hash(p.default)) for name, p in plan.parameters.items()}
    run = _Run(plan, request, run_id, settings, params, extensible, terminals_explicit)
    started = _now()
    if resume is not None:
        run.replay(resume)
        started = resume.started_at
    status = RunStatus.RUNNING
    unsubscribe: Callable[[], None] | None = None
    history = settings.history
    result: RunResult | None = None
    if resume is None and settings.data_store is not None:
        # Before the run is recorded: a crash right after must leave resume its inputs.
        for value, value_hash in params.values():
            await run._keep(value_hash, value)
    if resume is None and request.run_id:
        if not await history.claim_run(run.run_record(status, started, None)):
            raise DuplicateRunError(
                f"run id {run_id!r} is already recorded in this history; "
                "omit RunRequest.run_id to get a fresh one"
            )
    else:
        await history.record_run_started(run.run_record(status, started, None))
    try:
        async with anyio.create_task_group() as outer:
            if settings.emit is not None:
                run.send = settings.emit
                run.send(RunStarted(run.run_record(status, started, None)))
            flusher = await outer.start(run.flush_periodically)
            if extensible and settings.store is not None:
                run.token = anyio.lowlevel.current_token()
                unsubscribe = settings.store.subscribe(run.on_registered)
            timed_out = False
            with anyio.move_on_after(
                settings.timeout if settings.timeout is not None else math.inf
            ) as scope:
                async with open_nursery() as nursery:
                    run.start_ready(nursery)
            timed_out = scope.cancelled_caught
            if unsubscribe is not None:
                unsubscribe()
                unsubscribe = None
            if timed_out:
                status = RunStatus.TIMED_OUT
            elif any(type(r) is Err for r in run.results):
                status = RunStatus.FAILED
            else:
                status = RunStatus.SUCCEEDED
            finished = _now()
            result = run.result(status, started, finished)
            await run.flush()
            await history.record_run_finished(run.run_record(status, started, finished))
            if run.send is not None:
                run.send(RunFinished(result))
                run.send = None
            flusher.cancel()
        assert result is not None
        return result
    except BaseException as exc:
        if unsubscribe is not None:
            unsubscribe()
        if status is RunStatus.RUNNING:
            cancelled = isinstance(exc, anyio.get_cancelled_exc_class())
            with anyio.CancelScope(shield=True):
                await run.flush()
                final = RunStatus.CANCELLED if cancelled else RunStatus.FAILED
                await history.record_run_finished(run.run_record(final, started, _now()))
        raise
