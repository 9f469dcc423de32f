"""Triggers start runs when something happens outside; ``run_forever`` serves them.

Each trigger loads on first use and imports its client library only when opened,
so ``import pirn_like`` stays light.
"""

from typing import TYPE_CHECKING

from pirn_like._exports import lazy_exports, publish
from pirn_like.triggers._forever import run_forever

if TYPE_CHECKING:
    from pirn_like.streaming import StreamingSourceTrigger
    from pirn_like.triggers._clock import Clock, ManualClock, SystemClock
    from pirn_like.triggers._cron import CronTrigger, MissedFires
    from pirn_like.triggers._file_watch import FileWatchTrigger
    from pirn_like.triggers._kafka import KafkaTrigger
    from pirn_like.triggers._lease import Lease, lease_from_url
    from pirn_like.triggers._metrics import ServiceMetrics
    from pirn_like.triggers._valkey import ValKeyMessage, ValKeyTrigger
    from pirn_like.triggers._webhook import WebhookTrigger

_LAZY = {
    "Clock": "pirn_like.triggers._clock",
    "CronTrigger": "pirn_like.triggers._cron",
    "MissedFires": "pirn_like.triggers._cron",
    "FileWatchTrigger": "pirn_like.triggers._file_watch",
    "KafkaTrigger": "pirn_like.triggers._kafka",
    "Lease": "pirn_like.triggers._lease",
    "lease_from_url": "pirn_like.triggers._lease",
    "ManualClock": "pirn_like.triggers._clock",
    "ServiceMetrics": "pirn_like.triggers._metrics",
    "StreamingSourceTrigger": "pirn_like.streaming",
    "SystemClock": "pirn_like.triggers._clock",
    "ValKeyMessage": "pirn_like.triggers._valkey",
    "ValKeyTrigger": "pirn_like.triggers._valkey",
    "WebhookTrigger": "pirn_like.triggers._webhook",
}

__all__ = [
    "Clock",
    "CronTrigger",
    "FileWatchTrigger",
    "KafkaTrigger",
    "Lease",
    "ManualClock",
    "MissedFires",
    "ServiceMetrics",
    "StreamingSourceTrigger",
    "SystemClock",
    "ValKeyMessage",
    "ValKeyTrigger",
    "WebhookTrigger",
    "lease_from_url",
    "run_forever",
]

publish(__name__, globals(), [n for n in __all__ if n not in _LAZY])
__getattr__ = lazy_exports(__name__, globals(), _LAZY)
