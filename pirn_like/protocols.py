"""The seams of pirn_like: every pluggable part is a ``typing.Protocol``.

Implementations match structurally; none needs to inherit from anything here.
Each is an async context manager: it acquires what it needs in ``__aenter__`` and
releases it in ``__aexit__``. A tapestry opens its parts on first use and closes
them in ``Tapestry.aclose()`` (or at the end of ``async with tapestry:``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, Self

from pirn_like._ids import ContentHash, KnotId, RunId
from pirn_like.core._codecs import Codec
from pirn_like.core._events import RunEvent
from pirn_like.core._knot import Knot
from pirn_like.core._records import (
    CacheMiss,
    KnotLineage,
    RetentionReport,
    RunOutcome,
    RunRecord,
    RunRequest,
    RunStatus,
)

if TYPE_CHECKING:
    import networkx as nx

__all__ = [
    "Codec",
    "DataStore",
    "Delivery",
    "Dispatcher",
    "Emitter",
    "KnotCall",
    "RunHistory",
    "Serializer",
    "StreamItem",
    "StreamSource",
    "TapestryStore",
    "Trigger",
]


class _Resource(Protocol):
    async def __aenter__(self) -> Self: ...
    async def __aexit__(self, *exc_info: object) -> None: ...


@dataclass(frozen=True, slots=True)
class KnotCall:
    """One invocation of a knot's code: ``target(**kwargs)``, awaited if ``is_async``."""

    run_id: RunId
    knot_id: KnotId
    target: Callable[..., Any]
    kwargs: Mapping[str, Any]
    is_async: bool


class Dispatcher(_Resource, Protocol):
    """Decides where a knot's code runs.

    A dispatcher may also have ``inline_async = True`` to say that ``run`` only
    awaits async knots in the calling task; the engine then awaits plain async
    knots itself, skipping the call record (the default is False).

    ``run`` returns what the code returned or raises what it raised. When the
    calling task is cancelled (timeout or run cancellation), ``run`` must return
    promptly by raising the cancellation; work that cannot be stopped is abandoned
    and its result discarded.
    """

    @property
    def name(self) -> str:
        """Recorded in lineage as the dispatcher of each execution."""
        ...

    async def run(self, call: KnotCall) -> Any: ...


class TapestryStore(Protocol):
    """Holds a tapestry's knot definitions.

    ``add`` is synchronous because knots are registered while wiring; it raises
    ``WiringError`` for a duplicate id. ``subscribe`` calls ``listener`` for each
    knot added afterwards (this is what mid-run extension listens to) and returns a
    function that unsubscribes.

    A persistent store is also an async context manager: the tapestry opens it before
    anything else. ``add`` keeps the knot in memory at once and the store writes it
    out in the background; knots other processes add reach ``knots()`` and the
    listeners while the store is open. ``await store.sync()`` waits until every knot
    added so far is written and every knot written elsewhere so far is loaded.
    """

    @property
    def version(self) -> int:
        """Changes whenever a knot is added."""
        ...

    def add(self, knot: Knot) -> None: ...
    def get(self, knot_id: str) -> Knot | None: ...
    def knots(self) -> Mapping[KnotId, Knot]: ...
    def subscribe(self, listener: Callable[[Knot], None]) -> Callable[[], None]: ...


class RunHistory(_Resource, Protocol):
    """Keeps runs and lineage records; values are not kept here (see DataStore).

    Lineage arrives in batches while a run is in progress, so a crash loses at most
    the batch in flight. Queries return records in the order they were recorded.

    A history that survives its process sets the class attribute ``durable = True``;
    runs then checkpoint: a knot's children start only once its record is written,
    so ``Tapestry.resume`` can skip every knot whose children had started.
    """

    async def record_run_started(self, run: RunRecord) -> None: ...
    async def record_lineage(self, records: Sequence[KnotLineage]) -> None: ...
    async def record_run_finished(self, run: RunRecord) -> None: ...
    async def claim_run(self, run: RunRecord) -> bool:
        """Record ``run`` as started unless a run with its id is already recorded, in one
        atomic step; True if this call recorded it. Processes sharing a history use it
        to run a request with a given run id exactly once."""
        ...

    async def get_run(self, run_id: str) -> RunRecord | None: ...
    async def list_runs(
        self,
        *,
        limit: int = 100,
        status: RunStatus | None = None,
        started_before: datetime | None = None,
    ) -> list[RunRecord]:
        """Runs, newest first (by start time)."""
        ...

    async def get_lineage(self, run_id: str) -> list[KnotLineage]: ...
    async def query_lineage_by_output_hash(self, output_hash: str) -> list[KnotLineage]: ...
    async def query_lineage_by_input_hash(self, input_hash: str) -> list[KnotLineage]: ...
    async def query_lineage_by_knot_id(self, knot_id: str) -> list[KnotLineage]: ...
    async def query_lineage_by_cache_key(self, cache_key: str) -> list[KnotLineage]:
        """Records whose ``cache_key`` is ``cache_key`` (any outcome)."""
        ...

    async def delete_runs(self, run_ids: Sequence[str]) -> int:
        """Delete these runs and all their lineage, atomically; returns how many runs
        were deleted. Values are not touched (see ``delete_runs_older_than``)."""
        ...

    # Derived queries: every history gets these from ``LineageQueries``.
    async def explain_miss(self, run_id: str, knot_id: str) -> CacheMiss | None: ...
    async def provenance(self, content_hash: str) -> nx.DiGraph[str]: ...
    async def lineage_path(self, source_hash: str, target_hash: str) -> list[KnotLineage]: ...
    async def delete_runs_older_than(
        self,
        age: timedelta,
        *,
        data_store: DataStore | None = None,
        now: datetime | None = None,
    ) -> RetentionReport: ...


class DataStore(_Resource, Protocol):
    """Keeps values by content hash. Deleting a value (scrubbing) keeps its lineage."""

    async def put(self, content_hash: ContentHash, value: object) -> None: ...
    async def get(self, content_hash: ContentHash) -> object:
        """The value, or ``KeyError`` naming the hash if it is not (or no longer) kept."""
        ...

    async def contains(self, content_hash: ContentHash) -> bool: ...
    async def delete(self, content_hash: ContentHash) -> bool:
        """Scrub a value; True if it was kept."""
        ...


class Serializer(Protocol):
    """Turns values into bytes for persistent backends, and bytes back into values.

    ``dumps`` raises ``SerializationError`` for a value it cannot store; ``loads``
    raises ``SerializationError`` (``UntrustedPayloadError`` for refused pickles) for
    bytes it cannot or may not read. ``SafeSerializer`` is the default.
    """

    def dumps(self, value: object) -> bytes: ...
    def loads(self, data: bytes) -> object: ...


class Emitter(_Resource, Protocol):
    """Observes runs. Exceptions an emitter raises are logged and never fail a run."""

    async def emit(self, event: RunEvent) -> None: ...


class Delivery(Protocol):
    """One request a trigger hands to ``run_forever``, to be acknowledged once recorded.

    ``run_forever`` calls exactly one of ``settle`` or ``release`` per delivery.
    A trigger that can see the same message twice (Kafka, ValKey streams) gives its
    requests a run id derived from the message, so a redelivered message whose run is
    already recorded is settled as a duplicate instead of running again.
    """

    @property
    def request(self) -> RunRequest:
        """The run to start; ``request.trigger`` says what started it."""
        ...

    async def settle(self, outcome: RunOutcome) -> None:
        """The run is recorded in history (or was refused): acknowledge the message.

        A trigger may first route a failed outcome elsewhere (a dead-letter topic).
        """
        ...

    async def release(self) -> None:
        """The request was not run to the end (shutdown): leave it for redelivery."""
        ...


class Trigger(_Resource, Protocol):
    """Starts runs when something happens outside: a time, a message, a request.

    ``deliveries`` yields one delivery at a time and is only asked for the next when
    ``run_forever`` has room for another run, so a full service stops pulling.
    """

    @property
    def kind(self) -> str:
        """Short name recorded in each run's trigger (``cron``, ``kafka``, ...)."""
        ...

    def deliveries(self) -> AsyncIterator[Delivery]: ...


class StreamItem(Protocol):
    """One item a streaming source produced, acknowledged once its run is recorded."""

    @property
    def value(self) -> object: ...

    @property
    def position(self) -> str:
        """Where the item came from (a file offset, ``topic/partition/offset``)."""
        ...

    async def ack(self) -> None:
        """The item's run is recorded: the source may move past it."""
        ...


class StreamSource(_Resource, Protocol):
    """Feeds a continuous stream of items into runs of one pipeline (``run_stream``).

    Each item becomes the value of the parameter named ``parameter_name``.
    """

    @property
    def parameter_name(self) -> str: ...

    @property
    def kind(self) -> str: ...

    def items(self) -> AsyncIterator[StreamItem]: ...
