"""A bi-temporal, append-only event store, and its knots.

Every change to an entity is an immutable ``Event`` (``CREATED``, ``UPDATED``,
``CORRECTED``, ``DELETED``) with a version, a valid time and a transaction time;
``StoreWrite``, ``StoreCorrect`` and ``StoreRead`` put the store into a tapestry with
lineage down to the exact event versions. Stores: ``SQLiteEventStore`` (embedded,
the default), ``PostgresEventStore`` and ``InMemoryEventStore``, or by URL with
``event_store_from_url``. See docs/events.md.

The bridge pushes the store's events out, at least once, to Kafka, a ValKey stream or
a webhook (``Bridge``, ``BridgePush``, ``bridge_forever``, ``BridgeTrigger``), with a
durable cursor that moves only after the sink acknowledged. See docs/bridge.md.
"""

from typing import TYPE_CHECKING

from pirn_like._exports import lazy_exports, publish
from pirn_like.capabilities.events._errors import (
    EventStoreError,
    InvalidEventError,
    VersionConflictError,
)
from pirn_like.capabilities.events._from_url import event_store_from_url
from pirn_like.capabilities.events._knots import StoreCorrect, StoreRead, StoreWrite
from pirn_like.capabilities.events._memory import InMemoryEventStore
from pirn_like.capabilities.events._models import (
    Event,
    EventKind,
    JsonObject,
    ReadMode,
    WriteRequest,
)
from pirn_like.capabilities.events._postgres import PostgresEventStore
from pirn_like.capabilities.events._protocol import EventStore
from pirn_like.capabilities.events._sqlite import SQLiteEventStore

if TYPE_CHECKING:
    from pirn_like.capabilities.events._bridge import Bridge
    from pirn_like.capabilities.events._bridge_cursor import (
        MemoryBridgeCursor,
        SQLBridgeCursor,
        bridge_cursor_from_url,
    )
    from pirn_like.capabilities.events._bridge_cursor_valkey import ValKeyBridgeCursor
    from pirn_like.capabilities.events._bridge_errors import (
        BridgeError,
        BridgeFilterError,
        BridgeSinkError,
    )
    from pirn_like.capabilities.events._bridge_filters import Condition, Field
    from pirn_like.capabilities.events._bridge_forever import bridge_forever
    from pirn_like.capabilities.events._bridge_knot import BridgePush
    from pirn_like.capabilities.events._bridge_models import PushSummary
    from pirn_like.capabilities.events._bridge_protocol import (
        BridgeCursor,
        BridgeMessage,
        BridgeSink,
        idempotency_key,
    )
    from pirn_like.capabilities.events._bridge_trigger import BridgeTrigger
    from pirn_like.capabilities.events._sink_kafka import KafkaSink
    from pirn_like.capabilities.events._sink_memory import MemorySink
    from pirn_like.capabilities.events._sink_valkey import ValKeySink
    from pirn_like.capabilities.events._sink_webhook import WebhookSink

# Names whose modules load on first use (the bridge's sinks import client libraries).
_LAZY: dict[str, str] = {
    "Bridge": "pirn_like.capabilities.events._bridge",
    "BridgeCursor": "pirn_like.capabilities.events._bridge_protocol",
    "BridgeError": "pirn_like.capabilities.events._bridge_errors",
    "BridgeFilterError": "pirn_like.capabilities.events._bridge_errors",
    "BridgeMessage": "pirn_like.capabilities.events._bridge_protocol",
    "BridgePush": "pirn_like.capabilities.events._bridge_knot",
    "BridgeSink": "pirn_like.capabilities.events._bridge_protocol",
    "BridgeSinkError": "pirn_like.capabilities.events._bridge_errors",
    "BridgeTrigger": "pirn_like.capabilities.events._bridge_trigger",
    "Condition": "pirn_like.capabilities.events._bridge_filters",
    "Field": "pirn_like.capabilities.events._bridge_filters",
    "KafkaSink": "pirn_like.capabilities.events._sink_kafka",
    "MemoryBridgeCursor": "pirn_like.capabilities.events._bridge_cursor",
    "MemorySink": "pirn_like.capabilities.events._sink_memory",
    "PushSummary": "pirn_like.capabilities.events._bridge_models",
    "SQLBridgeCursor": "pirn_like.capabilities.events._bridge_cursor",
    "ValKeyBridgeCursor": "pirn_like.capabilities.events._bridge_cursor_valkey",
    "ValKeySink": "pirn_like.capabilities.events._sink_valkey",
    "WebhookSink": "pirn_like.capabilities.events._sink_webhook",
    "bridge_cursor_from_url": "pirn_like.capabilities.events._bridge_cursor",
    "bridge_forever": "pirn_like.capabilities.events._bridge_forever",
    "idempotency_key": "pirn_like.capabilities.events._bridge_protocol",
}

__all__ = [
    "Bridge",
    "BridgeCursor",
    "BridgeError",
    "BridgeFilterError",
    "BridgeMessage",
    "BridgePush",
    "BridgeSink",
    "BridgeSinkError",
    "BridgeTrigger",
    "Condition",
    "Event",
    "EventKind",
    "EventStore",
    "EventStoreError",
    "Field",
    "InMemoryEventStore",
    "InvalidEventError",
    "JsonObject",
    "KafkaSink",
    "MemoryBridgeCursor",
    "MemorySink",
    "PostgresEventStore",
    "PushSummary",
    "ReadMode",
    "SQLBridgeCursor",
    "SQLiteEventStore",
    "StoreCorrect",
    "StoreRead",
    "StoreWrite",
    "ValKeyBridgeCursor",
    "ValKeySink",
    "VersionConflictError",
    "WebhookSink",
    "WriteRequest",
    "bridge_cursor_from_url",
    "bridge_forever",
    "event_store_from_url",
    "idempotency_key",
]

publish(__name__, globals(), [n for n in __all__ if n not in _LAZY and n != "JsonObject"])
__getattr__ = lazy_exports(__name__, globals(), _LAZY)
