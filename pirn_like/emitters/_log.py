"""Structured logs of runs: one ``logging`` record per event, and a JSON formatter."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any, Self

from pirn_like.core._events import KnotFinished, KnotStarted, RunEvent, RunFinished, RunStarted
from pirn_like.core._records import RunStatus
from pirn_like.core._results import Outcome
from pirn_like.emitters._fields import event_fields

__all__ = ["JsonLogFormatter", "LogEmitter"]

_FAILED_RUNS = frozenset({RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.CANCELLED})
_FAILED_KNOTS = frozenset({Outcome.ERR, Outcome.CANCELLED})


class LogEmitter:
    """Logs one record per run event to ``logger`` (default ``pirn_like.runs``).

    Each record carries the event's fields as attributes (``extra``): ``event``,
    ``run_id``, ``knot_id``, ``outcome`` or ``status``, ``duration_s``, the content
    hashes (``config_hash``, ``input_hashes``, ``output_hash``), ``attempts``,
    ``errors``, ... Values (``value``, ``outputs``) are added only ``with_payload``.
    Records are logged at ``level``; failed knots and runs at ``WARNING`` or above.
    ``JsonLogFormatter`` writes them as one JSON object per line.
    """

    def __init__(
        self,
        with_payload: bool = False,
        *,
        logger: str | logging.Logger = "pirn_like.runs",
        level: int = logging.INFO,
    ) -> None:
        self.with_payload = with_payload
        self.logger = logger if isinstance(logger, logging.Logger) else logging.getLogger(logger)
        self.level = level
        self._failure_level = max(level, logging.WARNING)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def emit(self, event: RunEvent) -> None:
        """Log ``event``; nothing is built when the logger would drop the record."""
        level = self._level_of(event)
        if not self.logger.isEnabledFor(level):
            return
        fields = event_fields(event, with_payload=self.with_payload)
        self.logger.log(level, _message(event), extra=fields)

    def _level_of(self, event: RunEvent) -> int:
        match event:
            case KnotFinished(lineage=rec) if rec.outcome in _FAILED_KNOTS:
                return self._failure_level
            case RunFinished(result=result) if result.status in _FAILED_RUNS:
                return self._failure_level
            case _:
                return self.level


def _message(event: RunEvent) -> str:
    match event:
        case RunStarted(run=record):
            return f"run {record.run_id} started"
        case KnotStarted(run_id=run_id, knot_id=knot_id):
            return f"run {run_id}: knot {knot_id} started"
        case KnotFinished(lineage=rec):
            outcome = rec.outcome.value
            return f"run {rec.run_id}: knot {rec.knot_id} {outcome} in {rec.duration:.3f}s"
        case RunFinished(result=result):
            seconds = (result.finished_at - result.started_at).total_seconds()
            return f"run {result.run_id} {result.status.value} in {seconds:.3f}s"


# Attributes every LogRecord has: anything else on a record came from ``extra``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}


class JsonLogFormatter(logging.Formatter):
    """Formats each record as one JSON object: ``time``, ``level``, ``logger``,
    ``message``, every ``extra`` field, and ``exception`` when there is one.

    Works for any logger, e.g. ``handler.setFormatter(JsonLogFormatter())``, or
    ``{"()": "pirn_like.emitters.JsonLogFormatter"}`` in ``logging.config``.
    """

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in data:
                data[key] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            data["stack"] = self.formatStack(record.stack_info)
        return json.dumps(data, default=repr)
