"""A dispatcher that runs each knot as a Celery task, and the task its workers run."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Generator, Mapping
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any, Self, cast

import anyio
import anyio.to_thread

from pirn_like._errors import (
    BackendError,
    MissingExtraError,
    RemoteKnotError,
    SerializationError,
)
from pirn_like.backends._url import redact
from pirn_like.dispatchers._remote import (
    RemoteOptions,
    SharedOpening,
    pack_call,
    require_cloudpickle,
    run_payload,
    set_worker_pickle_key,
    unpack_result,
    worker_lost,
)
from pirn_like.protocols import KnotCall

if TYPE_CHECKING:
    from celery import Celery, Task
    from celery.result import AsyncResult

__all__ = ["TASK_NAME", "CeleryDispatcher", "register_celery_task"]

TASK_NAME = "pirn_like.run_knot"
"""The name of the one task a worker needs (see ``register_celery_task``)."""

_log = logging.getLogger(__name__)

_MISSED_BEATS = 3
"""A running knot whose worker misses this many heartbeats in a row is lost."""

_REVOKE_DEADLINE = 10.0
"""Seconds a cancelled knot waits for its revoke to reach the broker."""

_LONGEST_WAIT = 1.0
"""Seconds a waiting thread blocks before it looks at the heartbeat and for cancellation."""

_BEAT_KEY = "pirn-like-beat-{}"
"""Where a Redis/ValKey result backend keeps a running task's heartbeat."""
_BEAT_KEY_TTL = 60
"""Seconds a heartbeat outlives its last beat (a worker killed whole never deletes it)."""


def register_celery_task(app: Celery, *, pickle_key: bytes | None = None) -> Task:
    """Register the task ``CeleryDispatcher`` sends (``pirn_like.run_knot``) on ``app``.

    Call it in the module a worker loads with ``celery -A``. ``pickle_key`` lets the
    worker run cloudpickled code, but only from payloads signed with that key (it sets
    the key for the whole process, like ``PIRN_LIKE_PICKLE_KEY``); a worker holding a
    key refuses unsigned payloads, so give every dispatcher that feeds it the same key.
    """
    if pickle_key is not None:
        set_worker_pickle_key(pickle_key)
    task = app.task(
        name=TASK_NAME,
        bind=True,
        serializer="json",
        ignore_result=False,
        # A knot runs at most once per attempt: its RetryPolicy, not redelivery, retries.
        acks_late=False,
        reject_on_worker_lost=False,
    )(_run_knot)
    return cast("Task", task)  # a proxy until the app is finalized: it acts as the Task


def _run_knot(task: Task, payload: str, heartbeat: float | None = None) -> str:
    """The task body: a base64 payload in, a base64 result out (both travel in JSON)."""
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, TypeError) as exc:
        raise SerializationError(f"the task payload is not base64: {exc}") from None
    with _beating(task, heartbeat):
        result = run_payload(data, unsigned_pickle=False)
    return base64.b64encode(result).decode("ascii")


@contextmanager
def _beating(task: Task, every: float | None) -> Generator[None]:
    """Beat every ``every`` seconds until the block ends, with a counter that grows: the
    dispatcher sees a worker die by the counter stopping."""
    if every is None:
        yield
        return
    task_id: str = task.request.id
    backend = task.backend  # thread-safe; the heartbeat thread has no task context
    apart = _beats_apart(backend)
    worker = {"hostname": task.request.hostname, "pid": os.getpid()}
    ttl = max(_BEAT_KEY_TTL, int(every * _MISSED_BEATS) + 1)
    stop = threading.Event()

    def beat() -> None:
        count = 0
        while True:
            info = {**worker, "beat": count}
            try:
                if apart:
                    backend.set(_BEAT_KEY.format(task_id), json.dumps(info), expires=ttl)
                else:
                    backend.store_result(task_id, info, "STARTED")
            except Exception:
                _log.warning("heartbeat of task %s not stored", task_id, exc_info=True)
            count += 1
            if stop.wait(every):
                if apart:
                    with suppress(Exception):
                        backend.delete(_BEAT_KEY.format(task_id))
                return

    thread = threading.Thread(target=beat, name=f"pirn_like heartbeat {task_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        if not apart:
            thread.join()  # a STARTED beat must land before the result, never over it


def _beats_apart(backend: Any) -> bool:
    """Whether beats live under a key of their own (a Redis or ValKey backend): they then
    neither touch the task's result nor wake the dispatcher waiting on it, and the task
    never waits for a beat to land. Other backends mark the task STARTED instead."""
    try:
        from celery.backends.redis import RedisBackend
    except ImportError:  # the redis client is not installed: not a Redis backend
        return False
    return isinstance(backend, RedisBackend)


def _read_beat(backend: Any, task_id: str | None) -> Mapping[str, Any] | None:
    """The last heartbeat of a running task, or None if it has not beaten (yet)."""
    if _beats_apart(backend):
        raw = backend.get(_BEAT_KEY.format(task_id))
        info = json.loads(raw) if raw else None
    else:
        meta = backend.get_task_meta(task_id, cache=False)
        info = meta.get("result") if meta.get("status") == "STARTED" else None
    return info if isinstance(info, dict) else None


class CeleryDispatcher:
    """Runs each knot as one Celery task (``pirn_like.run_knot``) on the workers of ``app``.

    ``app`` needs a result backend. Each worker loads a module that registers the task::

        # myapp.py, run with: celery -A myapp worker
        from celery import Celery
        from pirn_like.dispatchers import register_celery_task

        app = Celery("myapp", broker="redis://...", backend="redis://...")
        register_celery_task(app)

    Messages are JSON: the shared remote payload travels base64-encoded, values through
    the ``Serializer`` (never pickle). By default the knot's code travels by reference
    (``module:qualname``), so workers must have it installed. Cloudpickled code
    (``RemoteOptions(code="pickle", pickle_key=...)``, and likewise a custom serializer)
    needs a key: payloads are signed, and the worker (``register_celery_task(app,
    pickle_key=...)``) checks the signature before unpickling; a worker without a key
    refuses any payload that carries a pickle.

    Waiting does not block the event loop: each knot in flight (at most
    ``max_in_flight``) waits in a thread on ``AsyncResult.get``, which takes results as
    the Redis backend publishes them and drains its subscription (polling ``ready()``
    would leave the subscription undrained, so memory grows until Redis drops the
    connection); backends without push are re-read every ``poll_interval`` seconds.

    On timeout or cancellation the task is revoked with ``terminate=True`` and SIGKILL:
    a task still queued never starts, and a prefork worker kills the process running
    it. A solo or threads pool cannot stop a running task: it runs on and its result is
    discarded. Celery never retries: the knot's ``RetryPolicy`` decides. A pool process
    that dies mid-knot raises ``WorkerLostError`` at once. While a knot runs its worker
    beats every ``heartbeat`` seconds; after three missed beats (a worker killed
    whole, or unreachable) the knot raises ``WorkerLostError``. With a Redis or ValKey
    result backend the beats live under a key of their own (``pirn-like-beat-<task
    id>``), off the task's path; other backends mark the task STARTED. A worker killed before
    starting a knot leaves it queued, and only the knot's ``KnotConfig(timeout=)``
    bounds the wait; so does a worker without the task registered.
    """

    def __init__(
        self,
        app: Celery,
        *,
        options: RemoteOptions | None = None,
        queue: str | None = None,
        poll_interval: float = 0.05,
        heartbeat: float | None = 5.0,
        max_in_flight: int = 64,
    ) -> None:
        options = options if options is not None else RemoteOptions(code="reference")
        if options.pickle_key is None and options.code == "pickle":
            raise ValueError(
                "CeleryDispatcher sends cloudpickled code only signed: pass "
                "RemoteOptions(code='pickle', pickle_key=<a secret of at least 16 bytes>) "
                "and register the task on the workers with the same key, or send code by "
                "reference with RemoteOptions(code='reference') (the default)"
            )
        if options.pickle_key is None and options.serializer is not None:
            raise ValueError(
                "a custom serializer travels to Celery workers pickled, so it needs a "
                "pickle_key: RemoteOptions(serializer=..., pickle_key=<secret>)"
            )
        if poll_interval <= 0:
            raise ValueError(f"poll_interval must be positive, got {poll_interval}")
        if heartbeat is not None and heartbeat <= 0:
            raise ValueError(f"heartbeat must be positive or None, got {heartbeat}")
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {max_in_flight}")
        self.app = app
        self.options = options
        self.queue = queue
        self.poll_interval = poll_interval
        self.heartbeat = heartbeat
        self.max_in_flight = max_in_flight
        self._limiter = anyio.CapacityLimiter(max_in_flight)
        self._opening = SharedOpening(self.name)

    @property
    def name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        queue = "" if self.queue is None else f", queue={self.queue!r}"
        return f"{type(self).__name__}(broker={self._broker()!r}{queue})"

    def _broker(self) -> str:
        return redact(str(self.app.conf.broker_url))

    async def __aenter__(self) -> Self:
        await self._opening.enter(self._open)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._opening.exit(self._close)

    async def _open(self) -> None:
        try:
            import celery  # noqa: F401  # pyright: ignore[reportUnusedImport]
        except ImportError as exc:
            raise MissingExtraError("CeleryDispatcher", "celery", "celery") from exc
        if self.options.code == "pickle":
            require_cloudpickle("CeleryDispatcher(code='pickle')", "pickle")
        if not self.app.conf.result_backend:
            raise ValueError(
                f"{self!r} needs a result backend to read knots' results from: "
                "Celery(..., backend='redis://...')"
            )
        try:
            await anyio.to_thread.run_sync(self._connect)
        except Exception as exc:
            raise BackendError(f"{self!r} cannot reach the broker {self._broker()}: {exc}") from exc

    async def _close(self) -> None:
        """Nothing to release: the app is the caller's, and the result backends the
        waiting threads used belong to anyio's worker threads."""

    def _connect(self) -> None:
        with self.app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=5)

    async def run(self, call: KnotCall) -> Any:
        self._opening.check()
        payload = base64.b64encode(await pack_call(call, self.options)).decode("ascii")
        task_id = str(uuid.uuid4())  # known before sending, so a cancel can always revoke
        abandoned = threading.Event()
        try:
            result = await anyio.to_thread.run_sync(
                self._call, call, task_id, payload, abandoned,
                abandon_on_cancel=True,
                limiter=self._limiter,
            )  # fmt: skip
        except anyio.get_cancelled_exc_class():
            abandoned.set()
            # Shielded, so the revoke goes out; bounded, so a dead broker cannot hang a cancel.
            with anyio.move_on_after(_REVOKE_DEADLINE, shield=True):
                await anyio.to_thread.run_sync(self._revoke, task_id, abandon_on_cancel=True)
            raise
        return await unpack_result(result, self.options)

    def _revoke(self, task_id: str) -> None:
        # Workers remember revoked ids, so this also holds for a task sent after it.
        self.app.control.revoke(task_id, terminate=True, signal="SIGKILL")

    def _call(
        self, call: KnotCall, task_id: str, payload: str, abandoned: threading.Event
    ) -> bytes:
        """Send the task and wait for its result, in one thread: the backend that
        subscribes to the result at sending is the one that drains it while waiting."""
        from kombu.exceptions import OperationalError

        try:
            result: AsyncResult = self.app.send_task(
                TASK_NAME,
                args=(payload,),
                kwargs={"heartbeat": self.heartbeat},
                task_id=task_id,
                queue=self.queue,
                serializer="json",
            )
        except OperationalError as exc:
            raise BackendError(f"{self!r} cannot send knot {call.knot_id!r}: {exc}") from exc
        watch = _Watch(self.heartbeat)
        try:
            finished = self._wait(call, result, watch, abandoned)
        finally:
            # Deletes the stored result and ends the subscription to it, on every path.
            with suppress(NotImplementedError):  # some backends cannot delete results
                result.forget()
        if finished is None:
            return b""  # the caller was cancelled and revoked the task; nobody reads this
        value, state, traceback = finished
        if state == "SUCCESS":
            if not isinstance(value, str):
                raise SerializationError(
                    f"task {task_id} of knot {call.knot_id!r} returned {type(value).__name__}, "
                    f"not a pirn_like result: is another task registered as {TASK_NAME!r}?"
                )
            return base64.b64decode(value)
        raise _task_failure(call, watch.worker, value, traceback)

    def _wait(
        self, call: KnotCall, result: AsyncResult, watch: _Watch, abandoned: threading.Event
    ) -> tuple[object, str, str | None] | None:
        """``(value or exception, state, traceback)`` of the finished task, or None once
        the caller gave up on it."""
        from celery.exceptions import TimeoutError as CeleryTimeout

        wait = _LONGEST_WAIT if self.heartbeat is None else min(_LONGEST_WAIT, self.heartbeat)
        while True:
            try:
                value = result.get(timeout=wait, interval=self.poll_interval, propagate=False)
            except CeleryTimeout:
                if abandoned.is_set():
                    return None
                lost = watch.check(_read_beat(self.app.backend, result.id))
                if lost is not None:
                    raise worker_lost(call, watch.worker, lost) from None
                continue
            return value, result.state, result.traceback


class _Watch:
    """The heartbeat of one task, as its STARTED meta shows it."""

    def __init__(self, heartbeat: float | None) -> None:
        self._lost_after = None if heartbeat is None else heartbeat * _MISSED_BEATS
        self._beat: object = None
        self._since = time.monotonic()
        self.worker = "of the Celery app"

    def check(self, info: Mapping[str, Any] | None) -> str | None:
        """Why the worker counts as lost, or None while it beats (or has not started)."""
        if info is None:
            return None  # queued, or already finished: get() returns next time
        self.worker = f"{info.get('hostname')} (pid {info.get('pid')})"
        now = time.monotonic()
        if info.get("beat") != self._beat:
            self._beat, self._since = info.get("beat"), now
            return None
        if self._lost_after is None or now - self._since < self._lost_after:
            return None
        return f"no heartbeat for {now - self._since:.1f} s"


def _task_failure(call: KnotCall, worker: str, exc: object, traceback: str | None) -> Exception:
    """The error for a task that failed in Celery itself (run_payload reports the knot's
    own failures in its result): the worker died, or the task was revoked or refused."""
    from celery.exceptions import WorkerLostError as PoolWorkerLost

    if isinstance(exc, PoolWorkerLost):
        return worker_lost(call, worker, exc)
    kind = type(exc)
    error = RemoteKnotError(f"{kind.__module__}.{kind.__qualname__}", str(exc))
    if traceback:
        error.add_note(f"remote traceback (worker {worker}):\n{traceback}")
    return error
