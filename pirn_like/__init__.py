"""pirn_like: a typed, async, graph-of-knots DAG framework with content-addressed lineage.

Wire knots into a ``Tapestry`` by passing one knot as a keyword argument of another,
then ``await tapestry.run(RunRequest(...))``. Every knot ends ``Ok``, ``Err`` or
``Skipped`` and leaves a ``KnotLineage`` record keyed by sha256 content hashes.
"""

from typing import TYPE_CHECKING

from pirn_like._errors import (
    BackendError,
    ClosedResourceError,
    CycleError,
    DuplicateRunError,
    KnotDefinitionError,
    KnotTimeoutError,
    MapItemsFailedError,
    MissingExtraError,
    ParameterError,
    ParentFailedError,
    PirnLikeError,
    RemoteKnotError,
    ResumeError,
    SchemaVersionError,
    SerializationError,
    SubTapestryError,
    UnhashableValueError,
    UntrustedPayloadError,
    WiringError,
    WorkerLostError,
)
from pirn_like._exports import lazy_exports, publish
from pirn_like._ids import ContentHash, KnotId, RunId
from pirn_like._tapestry import Tapestry
from pirn_like._version import __version__
from pirn_like.backends import (
    InMemoryDataStore,
    InMemoryHistory,
    InMemoryStore,
    data_store_from_url,
    history_from_url,
    store_from_url,
)
from pirn_like.core._codecs import Codec, CodecRegistry, register_codec
from pirn_like.core._config import CachePolicy, ErrorPolicy, KnotConfig, RetryPolicy
from pirn_like.core._events import KnotFinished, KnotStarted, RunEvent, RunFinished, RunStarted
from pirn_like.core._hashing import content_hash
from pirn_like.core._knot import Knot, Optional, Parameter, Ref, knot
from pirn_like.core._records import (
    CacheMiss,
    KnotLineage,
    RetentionReport,
    RunRecord,
    RunRequest,
    RunResult,
    RunStatus,
    StatusEvent,
)
from pirn_like.core._results import Err, ExceptionRecord, Ok, Outcome, Result, Skipped, SkipReason
from pirn_like.dispatchers import LocalDispatcher, ThreadDispatcher
from pirn_like.emitters import MemoryEmitter
from pirn_like.nodes import (
    Aggregator,
    Branch,
    DictMap,
    Gate,
    Map,
    Reduce,
    Sink,
    Source,
    SubTapestry,
    ZipMap,
)

if TYPE_CHECKING:
    from pirn_like.backends import (
        DuckDBHistory,
        LocalDiskDataStore,
        PostgresHistory,
        PostgresStore,
        S3DataStore,
        SQLiteHistory,
        SQLiteStore,
        ValKeyDataStore,
        ValKeyStore,
    )
    from pirn_like.core._serialization import SafeSerializer, ValueFormat
    from pirn_like.dispatchers import (
        CeleryDispatcher,
        DaskDispatcher,
        ProcessDispatcher,
        RayDispatcher,
        RemoteOptions,
        register_celery_task,
        set_worker_pickle_key,
    )

# Loaded on first use: persistent backends and the serializer are not needed to run.
_LAZY = {
    "LocalDiskDataStore": "pirn_like.backends",
    "S3DataStore": "pirn_like.backends",
    "ValKeyDataStore": "pirn_like.backends",
    "SQLiteStore": "pirn_like.backends",
    "PostgresStore": "pirn_like.backends",
    "ValKeyStore": "pirn_like.backends",
    "SQLiteHistory": "pirn_like.backends",
    "DuckDBHistory": "pirn_like.backends",
    "PostgresHistory": "pirn_like.backends",
    "CeleryDispatcher": "pirn_like.dispatchers",
    "register_celery_task": "pirn_like.dispatchers",
    "DaskDispatcher": "pirn_like.dispatchers",
    "ProcessDispatcher": "pirn_like.dispatchers",
    "RayDispatcher": "pirn_like.dispatchers",
    "RemoteOptions": "pirn_like.dispatchers",
    "set_worker_pickle_key": "pirn_like.dispatchers",
    "SafeSerializer": "pirn_like.core._serialization",
    "ValueFormat": "pirn_like.core._serialization",
}

__all__ = [
    "Aggregator",
    "BackendError",
    "Branch",
    "CacheMiss",
    "CachePolicy",
    "CeleryDispatcher",
    "ClosedResourceError",
    "Codec",
    "CodecRegistry",
    "ContentHash",
    "CycleError",
    "DaskDispatcher",
    "DictMap",
    "DuckDBHistory",
    "DuplicateRunError",
    "Err",
    "ErrorPolicy",
    "ExceptionRecord",
    "Gate",
    "InMemoryDataStore",
    "InMemoryHistory",
    "InMemoryStore",
    "Knot",
    "KnotConfig",
    "KnotDefinitionError",
    "KnotFinished",
    "KnotId",
    "KnotLineage",
    "KnotStarted",
    "KnotTimeoutError",
    "LocalDiskDataStore",
    "LocalDispatcher",
    "Map",
    "MapItemsFailedError",
    "MemoryEmitter",
    "MissingExtraError",
    "Ok",
    "Optional",
    "Outcome",
    "Parameter",
    "ParameterError",
    "ParentFailedError",
    "PirnLikeError",
    "PostgresHistory",
    "PostgresStore",
    "ProcessDispatcher",
    "RayDispatcher",
    "Reduce",
    "Ref",
    "RemoteKnotError",
    "RemoteOptions",
    "Result",
    "ResumeError",
    "RetentionReport",
    "RetryPolicy",
    "RunEvent",
    "RunFinished",
    "RunId",
    "RunRecord",
    "RunRequest",
    "RunResult",
    "RunStarted",
    "RunStatus",
    "S3DataStore",
    "SQLiteHistory",
    "SQLiteStore",
    "SafeSerializer",
    "SchemaVersionError",
    "SerializationError",
    "Sink",
    "SkipReason",
    "Skipped",
    "Source",
    "StatusEvent",
    "SubTapestry",
    "SubTapestryError",
    "Tapestry",
    "ThreadDispatcher",
    "UnhashableValueError",
    "UntrustedPayloadError",
    "ValKeyDataStore",
    "ValKeyStore",
    "ValueFormat",
    "WiringError",
    "WorkerLostError",
    "ZipMap",
    "__version__",
    "content_hash",
    "data_store_from_url",
    "history_from_url",
    "knot",
    "register_celery_task",
    "register_codec",
    "set_worker_pickle_key",
    "store_from_url",
]

publish(__name__, globals(), [n for n in __all__ if n not in _LAZY])
__getattr__ = lazy_exports(__name__, globals(), _LAZY)
