"""Emitters observe runs: events go out to logs, buses and traces.

Each emitter other than ``MemoryEmitter`` loads on first use and imports its client
library only when opened, so ``import pirn_like`` stays light.
"""

from typing import TYPE_CHECKING

from pirn_like._exports import lazy_exports, publish
from pirn_like.emitters._memory import MemoryEmitter

if TYPE_CHECKING:
    from pirn_like.emitters._kafka import KafkaEmitter
    from pirn_like.emitters._log import JsonLogFormatter, LogEmitter
    from pirn_like.emitters._openlineage import OpenLineageEmitter
    from pirn_like.emitters._otel import OpenTelemetryEmitter
    from pirn_like.emitters._valkey import ValKeyEmitter
    from pirn_like.emitters._webhook import WebhookEmitter

_LAZY = {
    "JsonLogFormatter": "pirn_like.emitters._log",
    "KafkaEmitter": "pirn_like.emitters._kafka",
    "LogEmitter": "pirn_like.emitters._log",
    "OpenLineageEmitter": "pirn_like.emitters._openlineage",
    "OpenTelemetryEmitter": "pirn_like.emitters._otel",
    "ValKeyEmitter": "pirn_like.emitters._valkey",
    "WebhookEmitter": "pirn_like.emitters._webhook",
}

__all__ = [
    "JsonLogFormatter",
    "KafkaEmitter",
    "LogEmitter",
    "MemoryEmitter",
    "OpenLineageEmitter",
    "OpenTelemetryEmitter",
    "ValKeyEmitter",
    "WebhookEmitter",
]

publish(__name__, globals(), [n for n in __all__ if n not in _LAZY])
__getattr__ = lazy_exports(__name__, globals(), _LAZY)
