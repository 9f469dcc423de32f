"""A dispatcher that runs knots on a Dask distributed cluster."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Self, cast

import anyio

from pirn_like._errors import MissingExtraError
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
    import distributed

__all__ = ["DaskDispatcher"]

_CANCEL_GRACE = 5.0
"""Seconds a cancelled knot waits for the scheduler to drop its task."""
_FLUSH_INTERVAL = 0.001
"""Seconds the dispatcher's own client batches messages to the scheduler (Dask's: 0.01)."""


class DaskDispatcher:
    """Runs every knot as a task on a Dask cluster (``pip install 'pirn-like[dask]'``).

    Give the scheduler's address (``"tcp://host:8786"``), or an existing
    ``distributed.Client(asynchronous=True)`` (the dispatcher never closes a client it was
    given), or use :meth:`local` for a cluster the dispatcher starts and stops itself.

    A worker that dies mid-knot is first rescheduled by Dask itself (up to its
    ``distributed.scheduler.allowed-failures``); after that the knot fails with
    ``WorkerLostError`` and its retry policy applies. Cancellation (a timeout or a
    cancelled run) asks the scheduler to drop the task. That usually keeps a queued task
    from running, but not always: one the scheduler already handed to a worker can still
    start, and one running on a worker thread cannot be stopped by Dask; either runs to
    its end, its result discarded. Use ProcessDispatcher or RayDispatcher when cancelled
    work must stop. Dask's client runs on asyncio only: on trio, opening raises.

    A client the dispatcher opens itself sends its messages to the scheduler every
    millisecond rather than Dask's ten: every knot is a message (its submit) after a
    message (the release of the previous knot's result), so Dask's batching would add
    up to ten milliseconds to each link of a chain. A client you give keeps its settings.
    """

    def __init__(
        self,
        scheduler: str | None = None,
        *,
        client: distributed.Client | None = None,
        options: RemoteOptions | None = None,
    ) -> None:
        if (scheduler is None) == (client is None):
            raise ValueError(
                "give DaskDispatcher either a scheduler address or a client (not both); "
                "DaskDispatcher.local() starts a local cluster"
            )
        self._setup(scheduler, client, options, None)

    def _setup(
        self,
        scheduler: str | None,
        client: distributed.Client | None,
        options: RemoteOptions | None,
        cluster_kwargs: dict[str, Any] | None,
    ) -> None:
        self.scheduler = scheduler
        self.options = options or RemoteOptions()
        self._given_client = client
        self._cluster_kwargs = cluster_kwargs
        self._client: distributed.Client | None = None
        self._cluster: distributed.LocalCluster | None = None
        self._opening = SharedOpening(type(self).__name__)

    @classmethod
    def local(
        cls,
        n_workers: int = 2,
        threads_per_worker: int = 1,
        processes: bool = True,
        *,
        options: RemoteOptions | None = None,
        **cluster_kwargs: Any,
    ) -> Self:
        """A dispatcher that starts a ``distributed.LocalCluster`` when opened and closes it
        when closed; ``cluster_kwargs`` go to ``LocalCluster`` (its HTTP endpoints on a free
        port unless ``dashboard_address`` says otherwise)."""
        cluster_kwargs.setdefault("dashboard_address", ":0")
        self = cls.__new__(cls)
        self._setup(
            None,
            None,
            options,
            {
                "n_workers": n_workers,
                "threads_per_worker": threads_per_worker,
                "processes": processes,
                **cluster_kwargs,
            },
        )
        return self

    @property
    def name(self) -> str:
        return type(self).__name__

    @property
    def client(self) -> distributed.Client:
        """The open client (ClosedResourceError when not open)."""
        self._opening.check()
        assert self._client is not None
        return self._client

    async def run(self, call: KnotCall) -> Any:
        client = self.client
        distributed = _distributed()
        payload = await pack_call(call, self.options)
        key = f"pirn-{call.knot_id}-{call.run_id}-{uuid.uuid4().hex[:12]}"
        future = client.submit(run_payload, payload, pure=False, key=key)
        try:
            result = await future
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True), anyio.move_on_after(_CANCEL_GRACE):
                await future.cancel(reason=f"pirn_like knot {call.knot_id!r} was cancelled")
            raise
        except distributed.KilledWorker as error:
            raise worker_lost(call, "dask", error) from error
        except distributed.client.FutureCancelledError as error:
            raise worker_lost(call, "dask", f"the scheduler dropped the task: {error}") from error
        finally:
            future.release()
        return await unpack_result(result, self.options)

    async def __aenter__(self) -> Self:
        await self._opening.enter(self._open)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._opening.exit(self._close_owned)

    async def _open(self) -> None:
        require_asyncio(self.name, "Dask's client is asyncio-based")
        distributed = _distributed()
        if self.options.code == "pickle":
            require_cloudpickle(self.name, "dask")
        if self._given_client is not None:
            self._client = self._given_client
            return
        address: Any = self.scheduler
        try:
            if self._cluster_kwargs is not None:
                self._cluster = await distributed.LocalCluster(
                    asynchronous=True, **self._cluster_kwargs
                )
                address = self._cluster
            client = await distributed.Client(address, asynchronous=True)
            _flush_often(client)
            self._client = client
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._close_owned()
            raise

    async def _close_owned(self) -> None:
        client, self._client = self._client, None
        cluster, self._cluster = self._cluster, None
        if client is self._given_client:
            return  # the caller's client: theirs to close
        # In asynchronous mode both return awaitables, though typed as returning None.
        if client is not None:
            await cast("Awaitable[None]", client.close())
        if cluster is not None:
            await cast("Awaitable[None]", cluster.close())


def _flush_often(client: distributed.Client) -> None:
    """Shorten the interval of the client's batched stream to the scheduler, where this
    version of distributed has one (an attribute of its BatchedSend, not a setting)."""
    stream = getattr(client, "scheduler_comm", None)
    if isinstance(getattr(stream, "interval", None), float):
        stream.interval = _FLUSH_INTERVAL  # type: ignore[union-attr]


def _distributed() -> Any:
    try:
        import distributed
    except ImportError as error:
        raise MissingExtraError("DaskDispatcher", "dask", "distributed") from error
    return distributed
