"""A dispatcher that runs each knot as a Ray task."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Self

import anyio
import anyio.to_thread

from pirn_like._errors import BackendError, MissingExtraError
from pirn_like.backends._url import redact
from pirn_like.dispatchers._remote import (
    RemoteOptions,
    SharedOpening,
    pack_call,
    require_asyncio,
    require_cloudpickle,
    run_payload,
    unpack_result,
    worker_lost,
)
from pirn_like.protocols import KnotCall

if TYPE_CHECKING:
    from types import ModuleType

    from ray._private.worker import RemoteFunction0

__all__ = ["RayDispatcher"]


class RayDispatcher:
    """Runs each knot as one Ray task on a Ray cluster (asyncio only).

    If Ray is already initialized in this process, the dispatcher uses that cluster
    and leaves it running on close; otherwise it calls ``ray.init(address=address,
    **init_kwargs)`` on open and ``ray.shutdown()`` on close. Calls travel as the
    shared remote payload (see ``options``); every worker needs pirn_like installed.

    Ray never retries a task by itself: the knot's ``RetryPolicy`` decides. A knot's
    own exception is rebuilt here; a worker that dies mid-knot (or any other Ray
    failure) raises ``WorkerLostError``. On timeout or cancellation the Ray task is
    cancelled with ``force=True``, which kills its worker process, so it does not
    run on.
    """

    def __init__(
        self,
        *,
        address: str | None = None,
        options: RemoteOptions | None = None,
        num_cpus: float | None = None,
        init_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if num_cpus is not None and num_cpus < 0:
            raise ValueError(f"num_cpus must not be negative, got {num_cpus}")
        self.address = address
        self.options = options if options is not None else RemoteOptions()
        self.num_cpus = num_cpus
        self.init_kwargs = dict(init_kwargs or {})
        self._opening = SharedOpening(self.name)
        self._started_ray = False
        self._task: RemoteFunction0[bytes, bytes] | None = None
        self._worker = "of the Ray cluster"

    @property
    def name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        where = "" if self.address is None else repr(redact(self.address))
        return f"{type(self).__name__}({where})"

    async def __aenter__(self) -> Self:
        await self._opening.enter(self._open)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        # Shielded by SharedOpening: a half-shut-down Ray leaves its processes behind.
        await self._opening.exit(self._close)

    async def _open(self) -> None:
        require_asyncio(repr(self), "Ray's ObjectRefs are awaited on an asyncio loop")
        ray = _import_ray()
        if self.options.code == "pickle":
            require_cloudpickle("RayDispatcher", "ray")
        if not ray.is_initialized():
            init = functools.partial(ray.init, address=self.address, **self.init_kwargs)
            try:
                await anyio.to_thread.run_sync(init)  # takes seconds: keep the loop free
            except Exception as exc:
                where = "a local Ray" if self.address is None else redact(self.address)
                raise BackendError(f"{self!r} cannot start or reach {where}: {exc}") from exc
            self._started_ray = True
        self._worker = f"of the Ray cluster at {ray.get_runtime_context().gcs_address}"
        task = _ray_task()
        self._task = task if self.num_cpus is None else task.options(num_cpus=self.num_cpus)

    async def _close(self) -> None:
        self._task = None
        if self._started_ray:
            import ray

            await anyio.to_thread.run_sync(ray.shutdown)

    async def run(self, call: KnotCall) -> Any:
        self._opening.check()
        task = self._task
        assert task is not None
        import ray
        import ray.exceptions

        payload = await pack_call(call, self.options)
        ref = task.remote(payload)
        try:
            result: bytes = await ref
        except anyio.get_cancelled_exc_class():
            # Kills the worker process: the knot must not run on after a timeout or cancel.
            ray.cancel(ref, force=True)
            raise
        except ray.exceptions.RayError as exc:
            # run_payload reports every failure of the knot in its result: this is Ray's.
            reason = str(exc).strip().partition("\n")[0]
            raise worker_lost(call, self._worker, f"{type(exc).__name__}: {reason}") from exc
        return await unpack_result(result, self.options)


def _import_ray() -> ModuleType:
    try:
        import ray
    except ImportError as exc:
        raise MissingExtraError("RayDispatcher", "ray", "ray") from exc
    return ray


@functools.cache
def _ray_task() -> RemoteFunction0[bytes, bytes]:
    """``run_payload`` as a Ray remote function, declared once per process."""
    import ray

    # pirn_like's RetryPolicy decides retries; Ray retrying too would multiply attempts.
    return ray.remote(max_retries=0)(run_payload)
