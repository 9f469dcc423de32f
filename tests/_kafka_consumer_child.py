"""A Kafka-triggered service to kill and restart, for tests/test_kafka_trigger.py.

Usage: python _kafka_consumer_child.py BOOTSTRAP TOPIC GROUP WORKDIR CONSUMER_OPTIONS_JSON

Serves ``run_forever(KafkaTrigger(...), tapestry)`` with a SQLite history and a
local-disk data store in WORKDIR until SIGTERM. Each message is a JSON object
``{"id": str, "n": int}``; the ``record`` knot appends its id to WORKDIR/effects.txt
(one line per execution, to count executions) and fails when ``n`` is negative.
Prints ``run <run_id> <status> <duplicate>`` for each settled run, and
``dead <topic/partition/offset>`` for each message dead-lettered before becoming a run.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import anyio

from pirn_like import KnotConfig, Parameter, RunOutcome, Tapestry, knot
from pirn_like.triggers import KafkaTrigger, run_forever

bootstrap, topic, group, workdir, consumer_options = sys.argv[1:6]
effects = Path(workdir, "effects.txt")


@knot
def record(id: str, n: int) -> str:
    if n < 0:
        raise ValueError(f"message {id} has a negative n: {n}")
    with effects.open("a") as out:
        out.write(f"{id}\n")
    return id


def report(outcome: RunOutcome) -> None:
    status = outcome.status.value if outcome.status is not None else "refused"
    print("run", outcome.run_id, status, outcome.duplicate, flush=True)


class ReportDeadLetters(logging.Handler):
    """Prints the messages the trigger dead-letters itself (they never become runs)."""

    def emit(self, record: logging.LogRecord) -> None:
        if "dead-lettered" in record.msg and isinstance(record.args, tuple):
            print("dead", record.args[1], flush=True)


logging.basicConfig(level=logging.WARNING)  # warnings to stderr, the child log
logging.getLogger("pirn_like.triggers").addHandler(ReportDeadLetters())


async def main() -> None:
    tapestry = Tapestry(
        history=f"sqlite:///{Path(workdir, 'runs.db')}",
        data_store=f"file://{Path(workdir, 'values')}",
    )
    with tapestry:
        record(id=Parameter("id", str), n=Parameter("n", int), _config=KnotConfig(id="record"))
    trigger = KafkaTrigger(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        consumer_options=json.loads(consumer_options),
    )
    async with tapestry:  # closes the history when the service ends
        await run_forever(
            trigger, tapestry, max_concurrent_runs=8, grace_period=10.0, on_outcome=report
        )


anyio.run(main, backend="asyncio")
