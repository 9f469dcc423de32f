"""The bi-temporal event store as knots: write, correct retroactively, read as of
both times, and follow lineage from a result back to the event version it used.

Run it with ``python examples/event_store.py``; the store is a SQLite file in a
temporary directory.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from pirn_like import KnotConfig, Parameter, RunRequest, Tapestry, content_hash, knot
from pirn_like.capabilities.events import (
    Event,
    SQLiteEventStore,
    StoreCorrect,
    StoreRead,
    StoreWrite,
)

FEB = datetime(2026, 2, 1, tzinfo=UTC)


@knot
async def payslip(employee: Event | None) -> str:
    if employee is None:
        return "no such employee"
    return f"{employee.entity_id}: {employee.payload['salary']} ({employee.key})"


def writes(store: SQLiteEventStore) -> Tapestry:
    """One write per run, from a webhook-shaped body."""
    with Tapestry() as t:
        StoreWrite(store=store, request=Parameter("body", dict), _config=KnotConfig(id="write"))
    return t


def correction(store: SQLiteEventStore) -> Tapestry:
    """Correct the version valid in January, then pay February from the fixed state."""
    with Tapestry() as t:
        wrong = StoreRead(
            store=store,
            entity_type="employee",
            entity_id="ann",
            mode="as_of_valid",
            valid_time=datetime(2026, 1, 15, tzinfo=UTC),
            _config=KnotConfig(id="wrong"),
        )
        fixed = StoreCorrect(
            store=store,
            of=wrong,
            payload={"salary": 110},
            expected_version=Parameter("seen_version", int),
            actor="audit",
            _config=KnotConfig(id="fix"),
        )
        february = StoreRead(
            store=store, of=fixed, mode="as_of_valid", valid_time=FEB, _config=KnotConfig(id="feb")
        )
        payslip(employee=february, _config=KnotConfig(id="payslip"))
    return t


async def main() -> None:
    workdir = Path(tempfile.mkdtemp())
    async with SQLiteEventStore(workdir / "hr.db") as store:
        w = writes(store)
        for body in (
            {"kind": "CREATED", "payload": {"salary": 100}, "expected_version": 0,
             "valid_from": "2026-01-01T00:00:00Z", "actor": "hr"},
            {"kind": "UPDATED", "payload": {"salary": 120}, "expected_version": 1,
             "valid_from": "2026-03-01T00:00:00Z", "actor": "hr"},
        ):  # fmt: skip
            run = await w.run(
                RunRequest(
                    parameters={"body": {"entity_type": "employee", "entity_id": "ann", **body}}
                )
            )
            assert run.succeeded, run.exceptions
        latest = await store.current("employee", "ann")
        assert latest is not None
        before_fix = latest.recorded_at  # when the store last changed before the fix

        c = correction(store)
        run = await c.run(RunRequest(parameters={"seen_version": 2}))
        assert run.succeeded, run.exceptions
        for e in await store.history("employee", "ann"):
            print(f"v{e.version} {e.kind:<9} salary {e.payload['salary']}  valid from "
                  f"{e.valid_from:%Y-%m-%d}  by {e.actor}")  # fmt: skip

        known_before = await store.as_of_valid("employee", "ann", FEB, recorded_at=before_fix)
        known_now = await store.as_of_valid("employee", "ann", FEB)
        assert known_before is not None
        assert known_now is not None

        # Lineage: the payslip was computed from the corrected event, which replaced v1.
        used = run.lineage_for("payslip").parent_input_hashes["employee"]
        assert used == content_hash(known_now)
        fix_inputs = run.lineage_for("fix").parent_input_hashes
        assert fix_inputs["of"] == content_hash(known_before)

        again = await c.run(RunRequest(parameters={"seen_version": 2}))
        print(f"a second correction from version 2: {again.exceptions[0].message}")
        print(
            f"February salary: {known_before.payload['salary']} as known before the fix, "
            f"{known_now.payload['salary']} as known now; payslip {run.outputs['payslip']!r} "
            f"derived from {known_now.key}, which corrects v{known_now.corrects}"
        )


if __name__ == "__main__":
    asyncio.run(main())
