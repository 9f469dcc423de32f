"""A cron service sharing one SQLite file with its peers, for tests/test_lease.py.

Usage: python _lease_child.py DB_PATH DATA_DIR HOLDER TTL

Runs ``run_forever`` with a ``CronTrigger(every_seconds=1)`` whose lease (holder
HOLDER, TTL seconds) and history are both in DB_PATH, until SIGTERM. Prints one line
per outcome: ``ran <run id> <status>`` or ``duplicate <run id> <status>``.
"""

from __future__ import annotations

import sys

import anyio

from pirn_like import KnotConfig, Parameter, RunOutcome, Tapestry, knot
from pirn_like.triggers import CronTrigger, MissedFires, run_forever
from pirn_like.triggers._lease_sqlite import SQLiteLease

db_path, data_dir, holder, ttl = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])


@knot
async def stamp(at: str) -> str:
    return f"{at} by {holder}"


async def main() -> None:
    tapestry = Tapestry(history=f"sqlite:///{db_path}", data_store=f"file://{data_dir}")
    with tapestry:
        stamp(at=Parameter("at", str), _config=KnotConfig(id="stamp"))
    trigger = CronTrigger(
        every_seconds=1,
        name="tick",
        parameters=lambda at: {"at": at.isoformat()},
        missed_fires=MissedFires.CATCH_UP,
        lease=SQLiteLease(db_path, "cron:tick", holder=holder, ttl=ttl),
    )

    def report(outcome: RunOutcome) -> None:
        kind = "duplicate" if outcome.duplicate else "ran"
        print(kind, outcome.run_id, outcome.status and outcome.status.value, flush=True)

    async with tapestry:  # closes the history when the service ends
        await run_forever(trigger, tapestry, on_outcome=report, grace_period=5.0)


anyio.run(main)
