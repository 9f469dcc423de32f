"""Streaming: feed a continuous stream of items into runs of one pipeline.

Triggers fire whole runs on events; a streaming source feeds items one by one into
``run_stream``, each item the value of one parameter. Sources load on first use.
"""

from typing import TYPE_CHECKING

from pirn_like._exports import lazy_exports

if TYPE_CHECKING:
    from pirn_like.streaming._file_tail import FileTailSource
    from pirn_like.streaming._iterable import IterableSource
    from pirn_like.streaming._kafka import KafkaStreamingSource
    from pirn_like.streaming._run_stream import StreamSummary, run_stream
    from pirn_like.streaming._trigger import StreamingSourceTrigger

_LAZY = {
    "FileTailSource": "pirn_like.streaming._file_tail",
    "IterableSource": "pirn_like.streaming._iterable",
    "KafkaStreamingSource": "pirn_like.streaming._kafka",
    "run_stream": "pirn_like.streaming._run_stream",
    "StreamSummary": "pirn_like.streaming._run_stream",
    "StreamingSourceTrigger": "pirn_like.streaming._trigger",
}

__all__ = [
    "FileTailSource",
    "IterableSource",
    "KafkaStreamingSource",
    "StreamSummary",
    "StreamingSourceTrigger",
    "run_stream",
]

__getattr__ = lazy_exports(__name__, globals(), _LAZY)
