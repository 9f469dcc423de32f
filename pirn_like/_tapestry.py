"""The Tapestry: where knots are registered and from where they run."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack, suppress
from contextvars import Token
from typing import Any, Self

import anyio

from pirn_like._errors import (
    ClosedResourceError,
    ParameterError,
    ResumeError,
    UnhashableValueError,
    WiringError,
)
from pirn_like._ids import ContentHash, KnotId
from pirn_like.backends import InMemoryHistory, InMemoryStore
from pirn_like.backends._from_url import data_store_from_url, history_from_url, store_from_url
from pirn_like.core._hashing import content_hash
from pirn_like.core._knot import Knot, Parameter, Registrar, _current_registrar
from pirn_like.core._plan import RunPlan, build_plan
from pirn_like.core._records import RunRequest, RunResult, RunStatus
from pirn_like.core._results import Outcome
from pirn_like.dispatchers import LocalDispatcher
from pirn_like.engine._emit import QUEUE_SIZE, EmitterHub, EmitterStats, check_queue_size
from pirn_like.engine._run import Resume, RunSettings, check_dispatchers, execute_run
from pirn_like.protocols import DataStore, Dispatcher, Emitter, RunHistory, TapestryStore

__all__ = ["Tapestry"]

_UNSET: Any = object()
_log = logging.getLogger("pirn_like")


class Tapestry:
    """A workspace of knots and the backends its runs use.

    Knots built inside ``with Tapestry() as t:`` register into ``t``; ``t.run(request)``
    runs every knot reachable from the terminals (by default the knots nothing else
    consumes). ``async with Tapestry(...) as t:`` also opens the backends, dispatcher
    and emitters up front and closes them at the end; otherwise they are opened on the
    first run and closed by ``await t.aclose()``.

    Backends may be given as URLs (``history="sqlite:///runs.db"``). With a durable
    history, runs checkpoint (a knot's children start once its lineage is written,
    so ``resume`` skips every finished knot); ``checkpoint=False`` trades that for
    speed, writing lineage in batches as the in-memory history gets it.

    ``dispatcher`` runs every knot unless a run passes its own; ``dispatchers`` names
    more, for knots that pin one with ``KnotConfig(dispatcher="name")`` (heavy knots on
    a cluster, the rest local).

    Emitters never slow or fail a run: each gets events through its own queue of
    ``emitter_queue_size`` events, delivered by its own task; a full queue drops the
    newest events (counted in ``emitter_stats()``). ``flush_emitters()`` waits until
    they have everything.
    """

    def __init__(
        self,
        *,
        store: TapestryStore | str | None = None,
        history: RunHistory | str | None = None,
        data_store: DataStore | str | None = None,
        dispatcher: Dispatcher | None = None,
        dispatchers: Mapping[str, Dispatcher] | None = None,
        emitters: Sequence[Emitter] = (),
        max_concurrency: int | None = None,
        tag_limits: Mapping[str, int] | None = None,
        checkpoint: bool | None = None,
        emitter_queue_size: int = QUEUE_SIZE,
    ) -> None:
        if isinstance(store, str):
            store = store_from_url(store)
        if isinstance(history, str):
            history = history_from_url(history)
        if isinstance(data_store, str):
            data_store = data_store_from_url(data_store)
        self._store: TapestryStore = store if store is not None else InMemoryStore()
        self._history: RunHistory = history if history is not None else InMemoryHistory()
        self._data_store = data_store
        self._dispatcher: Dispatcher = dispatcher if dispatcher is not None else LocalDispatcher()
        self._dispatchers = dict(dispatchers or {})
        self._emitters = tuple(emitters)
        check_queue_size("emitter_queue_size", emitter_queue_size)
        self._emitter_queue_size = emitter_queue_size
        self._hub: EmitterHub | None = None
        self._max_concurrency = max_concurrency
        self._tag_limits = dict(tag_limits or {})
        # Durable histories checkpoint by default: resume then skips every finished knot.
        self._checkpoint = (
            bool(getattr(self._history, "durable", False)) if checkpoint is None else checkpoint
        )
        self._tokens: list[Token[Registrar | None]] = []
        self._plans: dict[tuple[int, tuple[str, ...] | None], RunPlan] = {}
        self._declared: tuple[int, set[str]] | None = None
        self._resources: AsyncExitStack | None = None
        self._opening = anyio.Lock()
        self._closed = False

    # -- registration -----------------------------------------------------------

    def __enter__(self) -> Self:
        self._tokens.append(_current_registrar.set(self))
        return self

    def __exit__(self, *exc_info: object) -> None:
        _current_registrar.reset(self._tokens.pop())

    def with_backends(
        self,
        *,
        store: TapestryStore | str | None = None,
        history: RunHistory | str | None = None,
        data_store: DataStore | str | None = None,
        emitters: Sequence[Emitter] = (),
    ) -> Tapestry:
        """A new, unopened tapestry with this one's knots, dispatchers and limits, the
        given backends in place of its own (``None`` keeps its own) and ``emitters``
        added to its own. Entry points such as the CLI use it to point a pipeline at
        another history."""
        copy = Tapestry(
            store=store if store is not None else self._store,
            history=history if history is not None else self._history,
            data_store=data_store if data_store is not None else self._data_store,
            dispatcher=self._dispatcher,
            dispatchers=self._dispatchers,
            emitters=(*self._emitters, *emitters),
            max_concurrency=self._max_concurrency,
            tag_limits=self._tag_limits,
            emitter_queue_size=self._emitter_queue_size,
        )
        for knot in self._store.knots().values():
            copy.register(knot)
        return copy

    def register(self, knot: Knot) -> Knot:
        """Add ``knot`` to this tapestry; returns it. Duplicate ids are refused."""
        if not isinstance(knot, Knot):
            raise WiringError(f"register() takes a Knot, got {type(knot).__name__} {knot!r}")
        self._store.add(knot)
        return knot

    @property
    def knots(self) -> Mapping[KnotId, Knot]:
        """The registered knots by id."""
        return self._store.knots()

    def __getitem__(self, knot_id: str) -> Knot:
        knot = self._store.get(knot_id)
        if knot is None:
            raise KeyError(f"no knot {knot_id!r} in this tapestry")
        return knot

    @property
    def store(self) -> TapestryStore:
        return self._store

    @property
    def history(self) -> RunHistory:
        return self._history

    @property
    def data_store(self) -> DataStore | None:
        return self._data_store

    @property
    def dispatcher(self) -> Dispatcher:
        return self._dispatcher

    @property
    def max_concurrency(self) -> int | None:
        """At most this many knots at once per run (None: no limit)."""
        return self._max_concurrency

    @property
    def tag_limits(self) -> Mapping[str, int]:
        """At most this many knots with each tag at once per run."""
        return dict(self._tag_limits)

    # -- lifecycle --------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        """True while the backends, dispatcher and emitters are open."""
        return self._resources is not None

    async def open(self) -> None:
        """Open the backends, dispatcher and emitters now (the first run does otherwise).

        They stay open until ``aclose()``.
        """
        await self._open()

    async def __aenter__(self) -> Self:
        self.__enter__()
        await self._open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.__exit__(*exc_info)
        await self.aclose()

    async def _open(self) -> None:
        if self._closed:
            raise ClosedResourceError("this tapestry was closed; build a new one")
        if self._resources is not None:
            if self._hub is not None:
                self._hub.ensure_running()  # e.g. a second asyncio.run()
            return
        async with self._opening:  # one opener; concurrent first runs wait for it
            if self._resources is None:
                self._resources, self._hub = await self._open_parts()

    async def _open_parts(self) -> tuple[AsyncExitStack, EmitterHub | None]:
        stack = AsyncExitStack()
        await stack.__aenter__()
        live: list[Emitter] = []
        store: Any = self._store
        try:
            if hasattr(store, "__aenter__"):  # a persistent store: opened first, closed last
                await stack.enter_async_context(store)
            for part in (self._history, self._data_store, self._dispatcher):
                if part is not None:
                    await stack.enter_async_context(part)
            for pinned in self._dispatchers.values():
                if pinned is not self._dispatcher:
                    await stack.enter_async_context(pinned)
            for emitter in self._emitters:
                try:
                    live.append(await stack.enter_async_context(emitter))
                except Exception:  # an emitter never breaks a run, not even by failing to open
                    _log.exception("emitter %r failed to open; runs go on without it", emitter)
            hub = None
            if live:
                hub = EmitterHub(live, queue_size=self._emitter_queue_size)
                hub.ensure_running()
                stack.push_async_callback(hub.aclose)  # drained before emitters close
        except BaseException:
            await stack.aclose()
            raise
        return stack, hub

    async def aclose(self) -> None:
        """Close the backends, dispatcher and emitters this tapestry opened.

        Emitters first get up to ``CLOSE_TIMEOUT`` (10 s) to take what is queued."""
        self._closed = True
        stack, self._resources = self._resources, None
        if stack is not None:
            await stack.aclose()

    async def flush_emitters(self, timeout: float = 30.0) -> bool:
        """Wait until every emitter was handed every event so far; False on timeout.

        Runs do not wait for their emitters: a test or a script that reads what an
        emitter got calls this first."""
        if self._hub is None:
            return True
        return await self._hub.flush(timeout)

    def emitter_stats(self) -> tuple[EmitterStats, ...]:
        """Each open emitter's queue depth, capacity and delivered, failed, timed-out
        and dropped event counts (for metrics and health checks)."""
        return self._hub.stats() if self._hub is not None else ()

    def _repr_html_(self) -> str | None:
        """Jupyter shows a tapestry as its graph (plain repr when it does not build)."""
        from pirn_like.viz import svg_for_tapestry  # views load only when a notebook asks

        try:
            return svg_for_tapestry(self)
        except WiringError:  # CycleError included: the error says more than a picture
            return None

    # -- running ----------------------------------------------------------------

    def plan(self, terminals: Knot | str | Sequence[Knot | str] | None = None) -> RunPlan:
        """The validated plan a run with these terminals executes (cached per graph)."""
        if terminals is not None and not isinstance(terminals, Sequence | Knot):
            raise WiringError(f"terminals must be knots or knot ids, got {terminals!r}")
        if isinstance(terminals, Knot | str):
            terminals = [terminals]
        key_terms = None if terminals is None else tuple(_terminal_key(t) for t in terminals)
        key = (self._store.version, key_terms)
        plan = self._plans.get(key)
        if plan is None:
            plan = build_plan(self._store.knots(), terminals)
            if len(self._plans) > 64:
                self._plans.clear()
            self._plans[key] = plan
        return plan

    def check_parameters(
        self,
        parameters: Mapping[str, object],
        *,
        terminals: Knot | str | Sequence[Knot | str] | None = None,
    ) -> None:
        """Raise ``ParameterError`` (naming the parameter) if a run with ``parameters``
        would be refused; runs nothing. Entry points use it to refuse bad input early."""
        self._validate_parameters(self.plan(terminals), RunRequest(parameters=dict(parameters)))

    async def run(
        self,
        request: RunRequest | None = None,
        *,
        terminals: Knot | str | Sequence[Knot | str] | None = None,
        extensible: bool = False,
        dispatcher: Dispatcher | None = None,
        max_concurrency: int | None = _UNSET,
        tag_limits: Mapping[str, int] | None = None,
        timeout: float | None = None,
    ) -> RunResult:
        """Run the graph and return its ``RunResult``.

        Everything is validated before any knot runs (wiring, cycles, parameters).
        ``extensible=True`` merges knots registered while the run is in progress.
        ``timeout`` (seconds) cancels what is still running and ends the run as
        ``timed_out``. Cancelling the calling task cancels running knots, records
        them as cancelled, and re-raises.
        """
        request = request if request is not None else RunRequest()
        await self._open()  # first: a persistent store loads its knots when it opens
        plan = self.plan(terminals)
        params = self._validate_parameters(plan, request)
        self._check_memoization(plan)
        check_dispatchers(plan, self._dispatchers)
        return await execute_run(
            plan,
            request,
            self._settings(dispatcher, max_concurrency, tag_limits, timeout),
            extensible=extensible,
            terminals_explicit=terminals is not None,
            params=params,
        )

    async def resume(
        self,
        run_id: str,
        *,
        dispatcher: Dispatcher | None = None,
        max_concurrency: int | None = _UNSET,
        tag_limits: Mapping[str, int] | None = None,
        timeout: float | None = None,
    ) -> RunResult:
        """Continue an interrupted run (crashed, cancelled, timed out or failed).

        Knots that finished ``Ok`` are replayed from their stored outputs (the data
        store must hold them) when every knot upstream of them was too; everything else
        runs again, under the same run id, adding to the same lineage. Needs a
        persistent history and data store to survive a crash of the process.
        """
        await self._open()
        record = await self._history.get_run(run_id)
        if record is None:
            raise ResumeError(f"no run {run_id!r} in this tapestry's history")
        if record.status is RunStatus.SUCCEEDED:
            raise ResumeError(f"run {run_id!r} already succeeded; there is nothing to resume")
        if self._data_store is None:
            raise ResumeError(
                f"resuming run {run_id!r} needs the data store its outputs were kept in: "
                "Tapestry(data_store=...)"
            )
        plan = self.plan(record.terminals or None)
        self._check_memoization(plan)
        check_dispatchers(plan, self._dispatchers)
        parameters = {
            name: await self._stored(run_id, f"parameter {name!r}", h)
            for name, h in record.parameter_hashes.items()
        }
        request = RunRequest(
            parameters=parameters,
            run_id=run_id,
            trigger=record.trigger,
            labels=record.labels,
            parent_run_id=record.parent_run_id,
            parent_knot_id=record.parent_knot_id,
        )
        params = self._validate_parameters(plan, request)
        prior = await self._history.get_lineage(run_id)
        # Each plan node's latest record (map items and inner runs are not nodes).
        latest = {rec.knot_id: rec for rec in prior if rec.knot_id in plan.index}
        outputs: dict[KnotId, tuple[object, ContentHash]] = {}
        for knot_id, rec in latest.items():
            if rec.outcome is Outcome.OK and rec.output_hash is not None:
                with suppress(KeyError):  # a value no longer kept: that knot runs again
                    value = await self._data_store.get(rec.output_hash)  # type: ignore[arg-type]
                    outputs[knot_id] = (value, rec.output_hash)
        return await execute_run(
            plan,
            request,
            self._settings(dispatcher, max_concurrency, tag_limits, timeout),
            extensible=False,
            terminals_explicit=bool(record.terminals),
            params=params,
            resume=Resume(started_at=record.started_at, prior=prior, outputs=outputs),
        )

    async def _stored(self, run_id: str, what: str, content_hash: str) -> object:
        assert self._data_store is not None
        try:
            return await self._data_store.get(content_hash)  # type: ignore[arg-type]
        except KeyError:
            raise ResumeError(
                f"cannot resume run {run_id!r}: the value of {what} ({content_hash}) is no "
                "longer in the data store"
            ) from None

    def _check_memoization(self, plan: RunPlan) -> None:
        if plan.memoized and self._data_store is None:
            raise WiringError(
                f"knots {list(plan.memoized)} have KnotConfig(cache=...), which replays "
                "outputs from a data store: pass Tapestry(data_store=...), e.g. "
                "InMemoryDataStore() or 'file:///path/to/values'"
            )

    def _settings(
        self,
        dispatcher: Dispatcher | None,
        max_concurrency: int | None,
        tag_limits: Mapping[str, int] | None,
        timeout: float | None,
    ) -> RunSettings:
        return RunSettings(
            dispatcher=dispatcher if dispatcher is not None else self._dispatcher,
            history=self._history,
            data_store=self._data_store,
            emit=self._hub.send if self._hub is not None else None,
            max_concurrency=(
                self._max_concurrency if max_concurrency is _UNSET else max_concurrency
            ),
            tag_limits=self._tag_limits if tag_limits is None else tag_limits,
            timeout=timeout,
            store=self._store,
            new_store=InMemoryStore,
            checkpoint=self._checkpoint,
            dispatchers=self._dispatchers,
        )

    def _known_parameters(self, plan: RunPlan) -> set[str]:
        """Every parameter this tapestry declares (cached per graph version)."""
        version = self._store.version
        if self._declared is None or self._declared[0] != version:
            self._declared = (version, _declared_parameters(self._store.knots()))
        return self._declared[1] | set(plan.parameters)

    def _validate_parameters(
        self, plan: RunPlan, request: RunRequest
    ) -> dict[str, tuple[object, ContentHash]]:
        given = request.parameters
        known = self._known_parameters(plan) if given else set()
        unknown = sorted(set(given) - known)
        if unknown:
            raise ParameterError(
                f"unknown parameter {', '.join(map(repr, unknown))}; "
                f"this tapestry declares: {sorted(known)}"
            )
        values: dict[str, tuple[object, ContentHash]] = {}
        for name, param in plan.parameters.items():
            if name in given:
                value = _coerce(plan, param, given[name])
            elif param.has_default:
                value = param.default
            else:
                raise ParameterError(
                    f"missing required parameter {name!r} ({_type_name(param.type_)}): "
                    f"pass RunRequest(parameters={{{name!r}: ...}}); used by "
                    f"{_consumers(plan, param)}"
                )
            try:
                values[name] = (value, content_hash(value))
            except UnhashableValueError as exc:
                raise ParameterError(str(exc.located(f"parameter {name!r}"))) from None
        return values


def _declared_parameters(knots: Mapping[KnotId, Knot]) -> set[str]:
    return {k.name for k in knots.values() if isinstance(k, Parameter)}


def _terminal_key(t: Knot | str) -> str:
    return t.id if isinstance(t, Knot) else str(t)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", repr(tp))


def _consumers(plan: RunPlan, param: Parameter) -> list[str]:
    i = plan.index[param.id]
    return [plan.nodes[c].knot.id for c in plan.children[i]]


def _coerce(plan: RunPlan, param: Parameter, value: object) -> object:
    if param.type_ is object or param.type_ is Any:
        return value
    adapter = param.__dict__.get("_adapter")
    if adapter is None:
        from pydantic import TypeAdapter

        adapter = TypeAdapter(param.type_)
        param.__dict__["_adapter"] = adapter
    from pydantic import ValidationError

    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        problems = "; ".join(e["msg"] for e in exc.errors())
        raise ParameterError(
            f"parameter {param.name!r} (knot {param.id!r}) expects {_type_name(param.type_)}, "
            f"got {type(value).__name__} {value!r}: {problems}; used by {_consumers(plan, param)}"
        ) from None
