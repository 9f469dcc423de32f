"""The event store's knots in tapestries: writes, reads, corrections, stale versions
as errors, wiring checks, and lineage from a result back to the exact event version."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import networkx as nx
import pytest

from pirn_like import KnotConfig, Parameter, RunRequest, Tapestry, WiringError, content_hash, knot
from pirn_like.capabilities.events import (
    Event,
    EventKind,
    InMemoryEventStore,
    SQLiteEventStore,
    StoreCorrect,
    StoreRead,
    StoreWrite,
)

pytestmark = pytest.mark.anyio

JAN, MAR = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)


@knot
async def profile(name: str, salary: int) -> dict[str, Any]:
    return {"name": name, "salary": salary}


@knot
async def payslip(employee: Event) -> str:
    return f"{employee.payload['name']}: {employee.payload['salary']} (v{employee.version})"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteEventStore]:
    async with SQLiteEventStore(tmp_path / "events.db") as opened:
        yield opened


def hiring(store: SQLiteEventStore) -> Tapestry:
    with Tapestry() as t:
        who = Parameter("who", str)
        write = StoreWrite(
            store=store,
            entity_type="employee",
            entity_id=who,
            kind="CREATED",
            payload=profile(
                name=Parameter("name", str),
                salary=Parameter("salary", int),
                _config=KnotConfig(id="profile"),
            ),
            expected_version=0,
            valid_from=JAN,
            actor="hr",
            _config=KnotConfig(id="hire"),
        )
        read = StoreRead(store=store, of=write, _config=KnotConfig(id="read"))
        payslip(employee=read, _config=KnotConfig(id="payslip"))
    return t


async def test_a_write_read_and_result_link_back_to_the_event_version(
    store: SQLiteEventStore,
) -> None:
    t = hiring(store)
    run = await t.run(RunRequest(parameters={"who": "e1", "name": "Ann", "salary": 100}))
    assert run.succeeded, run.exceptions
    written = run.outputs["hire"]
    assert isinstance(written, Event)
    assert (written.entity_id, written.version, written.kind, written.actor) == (
        "e1",
        1,
        EventKind.CREATED,
        "hr",
    )
    assert written.valid_from == JAN
    assert run.outputs["read"] == written
    assert run.outputs["payslip"] == "Ann: 100 (v1)"
    assert await store.history("employee", "e1") == [written]

    # The write's output hash is the hash of the event it wrote; the read and the
    # payslip consumed exactly that version.
    event_hash = content_hash(written)
    assert run.lineage_for("hire").output_hash == event_hash
    assert run.lineage_for("payslip").parent_input_hashes == {"employee": event_hash}
    consumers = await t.history.query_lineage_by_input_hash(event_hash)
    assert {r.knot_id for r in consumers} == {"read", "payslip"}
    slip = run.lineage_for("payslip").output_hash
    assert slip is not None
    graph = await t.history.provenance(slip)
    upstream = nx.ancestors(graph, slip)
    assert {event_hash, content_hash("e1"), content_hash("Ann"), content_hash(100)} <= upstream
    path = await t.history.lineage_path(content_hash("Ann"), slip)
    # The read returned the very version written (one hash): the shortest derivation
    # goes from the write straight to the payslip.
    assert [r.knot_id for r in path] == ["profile", "hire", "payslip"]


async def test_a_stale_expected_version_fails_the_knot_naming_both_versions(
    store: SQLiteEventStore,
) -> None:
    t = hiring(store)
    first = await t.run(RunRequest(parameters={"who": "e1", "name": "Ann", "salary": 100}))
    assert first.succeeded
    again = await t.run(RunRequest(parameters={"who": "e1", "name": "Ann", "salary": 999}))
    assert not again.succeeded
    (error,) = [e for e in again.exceptions if e.knot_id == "hire"]
    assert error.type.endswith("VersionConflictError")
    assert "expected version 0" in error.message
    assert "at version 1" in error.message
    assert [e.payload["salary"] for e in await store.history("employee", "e1")] == [100]


async def test_a_back_dated_correction_and_reads_as_of_both_times(
    store: SQLiteEventStore,
) -> None:
    first = await hiring(store).run(
        RunRequest(parameters={"who": "e1", "name": "Ann", "salary": 100})
    )
    hired = first.outputs["hire"]
    await store.append(
        "employee", "e1", EventKind.UPDATED, {"name": "Ann", "salary": 120},
        expected_version=1, valid_from=MAR,
    )  # fmt: skip
    feb = datetime(2026, 2, 1, tzinfo=UTC)
    with Tapestry() as t:
        hired_as = StoreRead(
            store=store,
            entity_type="employee",
            entity_id="e1",
            mode="as_of_valid",
            valid_time=JAN,
            _config=KnotConfig(id="as_hired"),
        )
        fix = StoreCorrect(
            store=store,
            of=hired_as,
            payload={"name": "Ann", "salary": 110},
            expected_version=2,
            actor="audit",
            _config=KnotConfig(id="fix"),
        )
        StoreRead(store=store, of=fix, mode="history", _config=KnotConfig(id="trail"))
        payslip(
            employee=StoreRead(
                store=store,
                of=fix,
                mode="as_of_valid",
                valid_time=feb,
                _config=KnotConfig(id="feb"),
            ),
            _config=KnotConfig(id="feb_slip"),
        )
        # As known when Ann was hired: the same whenever it runs relative to the fix.
        StoreRead(
            store=store,
            entity_type="employee",
            entity_id="e1",
            mode="as_of_transaction",
            recorded_at=Parameter("known_at", datetime),
            valid_time=feb,
            _config=KnotConfig(id="then"),
        )
    run = await t.run(RunRequest(parameters={"known_at": hired.recorded_at}))
    assert run.succeeded, run.exceptions
    fixed = run.outputs["fix"]
    assert (fixed.kind, fixed.corrects, fixed.version, fixed.valid_from) == (
        EventKind.CORRECTED,
        1,
        3,
        JAN,
    )
    assert [e.version for e in run.outputs["trail"]] == [1, 2, 3]
    assert run.outputs["feb_slip"] == "Ann: 110 (v3)"
    assert run.outputs["then"] == hired
    # The correction names the version it replaced by that version's hash.
    assert run.lineage_for("fix").parent_input_hashes["of"] == content_hash(hired)


async def test_a_webhook_shaped_request_writes_on_asyncio_and_trio() -> None:
    async with InMemoryEventStore() as store:
        with Tapestry() as t:
            StoreWrite(store=store, request=Parameter("body", dict), _config=KnotConfig(id="w"))
        body = {
            "entity_type": "order",
            "entity_id": "o-1",
            "kind": "CREATED",
            "payload": {"total": 12.5},
            "expected_version": 0,
            "valid_from": "2026-01-01T09:00:00+01:00",
        }
        run = await t.run(RunRequest(parameters={"body": body}))
        assert run.succeeded, run.exceptions
        event = run.outputs["w"]
        assert event.valid_from == datetime(2026, 1, 1, 8, tzinfo=UTC)
        assert await store.current("order", "o-1") == event
        bad = await t.run(RunRequest(parameters={"body": {**body, "kind": "MOVED"}}))
        (error,) = bad.exceptions
        assert "kind" in error.message
        assert "MOVED" in error.message


def test_knots_refuse_wiring_that_makes_no_request() -> None:
    store = InMemoryEventStore()
    with pytest.raises(WiringError, match=r"needs request= .* \['expected_version'\]"):
        StoreWrite(
            store=store, entity_type="a", entity_id="b", kind="CREATED", _config=KnotConfig(id="w")
        )
    with pytest.raises(WiringError, match="either request= or its fields"):
        StoreWrite(store=store, request={}, actor="x", _config=KnotConfig(id="w"))
    with pytest.raises(WiringError, match="store= must be an EventStore"):
        StoreWrite(store="sqlite:///x.db", request={}, _config=KnotConfig(id="w"))  # type: ignore[arg-type]
    with pytest.raises(WiringError, match="mode must be one of current, as_of_valid"):
        StoreRead(
            store=store, mode="latest", entity_type="a", entity_id="b", _config=KnotConfig(id="r")
        )
    with pytest.raises(WiringError, match="'as_of_valid' needs the input valid_time="):
        StoreRead(
            store=store,
            mode="as_of_valid",
            entity_type="a",
            entity_id="b",
            _config=KnotConfig(id="r"),
        )
    with pytest.raises(WiringError, match=r"'current' takes no \['valid_time'\]"):
        StoreRead(
            store=store, entity_type="a", entity_id="b", valid_time=JAN, _config=KnotConfig(id="r")
        )
    with pytest.raises(WiringError, match="needs entity_type= and entity_id="):
        StoreRead(store=store, entity_type="a", _config=KnotConfig(id="r"))
    with pytest.raises(WiringError, match="of= or corrects=, one of them"):
        StoreCorrect(
            store=store, entity_type="a", entity_id="b", payload={}, _config=KnotConfig(id="c")
        )
    with pytest.raises(WiringError, match="needs payload="):
        StoreCorrect(
            store=store, entity_type="a", entity_id="b", corrects=1, _config=KnotConfig(id="c")
        )


def test_the_store_enters_the_config_hash(tmp_path: Path) -> None:
    def read(store: Any, mode: str = "current") -> StoreRead:
        return StoreRead(
            store=store, mode=mode, entity_type="a", entity_id="b", _config=KnotConfig(id="r")
        )

    here, there = SQLiteEventStore(tmp_path / "a.db"), SQLiteEventStore(tmp_path / "b.db")
    assert read(here).config_hash == read(SQLiteEventStore(tmp_path / "a.db")).config_hash
    assert read(here).config_hash != read(there).config_hash
    assert read(here).config_hash != read(here, "history").config_hash
