"""One behavioural suite for every RunHistory: in memory, SQLite, DuckDB, PostgreSQL."""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import pytest
from _backend_helpers import execute_sql, fetch_sql
from _fixtures_valkey import free_port

from pirn_like import (
    BackendError,
    ClosedResourceError,
    InMemoryHistory,
    KnotConfig,
    KnotLineage,
    Outcome,
    Parameter,
    RunRecord,
    RunRequest,
    RunStatus,
    SchemaVersionError,
    SkipReason,
    Tapestry,
    knot,
)
from pirn_like.backends import _sql
from pirn_like.backends._duckdb_history import DuckDBHistory
from pirn_like.backends._postgres_history import PostgresHistory
from pirn_like.backends._sql import SQLITE
from pirn_like.backends._sqlite_history import SQLiteHistory
from pirn_like.backends._url import redact
from pirn_like.core._records import STORED_EXCEPTIONS, stored_exceptions
from pirn_like.core._results import STORED_MESSAGE_CHARS, STORED_TRACEBACK_CHARS
from pirn_like.protocols import RunHistory

pytestmark = pytest.mark.anyio

KINDS = ["memory", "sqlite", "duckdb", "postgres"]
PERSISTENT = ["sqlite", "duckdb", "postgres"]
T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
PLUS_TWO = timezone(timedelta(hours=2))


@pytest.fixture
def anyio_backend() -> str:
    """aiosqlite and asyncpg run on asyncio only."""
    return "asyncio"


@dataclass(frozen=True)
class Backend:
    """Where one history keeps its records; ``make`` opens a new handle on them."""

    kind: str
    url: str

    def make(self) -> RunHistory:
        match self.kind:
            case "memory":
                return InMemoryHistory()
            case "sqlite":
                return SQLiteHistory.from_url(self.url)
            case "duckdb":
                return DuckDBHistory.from_url(self.url)
            case _:
                return PostgresHistory.from_url(self.url, max_size=4)


def _backend(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    match kind:
        case "memory":
            return Backend(kind, "")
        case "sqlite" | "duckdb":
            return Backend(kind, f"{kind}:///{tmp_path / f'history.{kind}'}")
        case _:
            return Backend(kind, request.getfixturevalue("postgres_db_url"))


@pytest.fixture(params=KINDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return _backend(request.param, request, tmp_path)


@pytest.fixture(params=PERSISTENT)
def persistent(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return _backend(request.param, request, tmp_path)


@pytest.fixture
async def history(backend: Backend) -> AsyncIterator[RunHistory]:
    async with backend.make() as opened:
        yield opened


def run_record(run_id: str, *, started: datetime = T0, **changes: object) -> RunRecord:
    fields: dict[str, object] = {
        "run_id": run_id,
        "status": RunStatus.SUCCEEDED,
        "started_at": started,
        "finished_at": started + timedelta(seconds=3, microseconds=7),
        "terminals": ["answer", "report"],
        "parameter_hashes": {"x": "sha256:x", "y": "sha256:y"},
        "trigger": {"kind": "cron", "detail": {"every": [1, 2.5, None, True], "tz": "é"}},
        "labels": {"team": "data"},
        "parent_run_id": "outer",
        "parent_knot_id": "sub",
        "knot_count": 7,
        "error_ids": ["sha256:e1", "sha256:e2"],
        "pirn_like_version": "9.9.9",
        "exceptions": [
            {
                "id": "sha256:e1",
                "type": "builtins.ValueError",
                "message": "bad 'row' \"7\" é </script>\n\tline two",
                "traceback": 'Traceback (most recent call last):\n  File "x.py"\nValueError\n',
                "knot_id": "answer",
            },
            {"id": "sha256:e2", "type": "T", "message": "", "traceback": "", "knot_id": None},
        ],
    }
    fields.update(changes)
    return RunRecord.model_validate(fields)


def lineage(run_id: str, knot_id: str, n: int = 0, **changes: object) -> KnotLineage:
    rec = KnotLineage(
        run_id=run_id,  # type: ignore[arg-type]
        knot_id=knot_id,  # type: ignore[arg-type]
        knot_class="tests.knots.Scale",
        knot_config_hash="sha256:config",  # type: ignore[arg-type]
        parent_input_hashes={"a": f"sha256:in-{n}", "b": "sha256:shared"},  # type: ignore[dict-item]
        parent_knot_ids={"a": "param:x", "b": "load"},  # type: ignore[dict-item]
        output_hash=f"sha256:out-{run_id}-{knot_id}-{n}",  # type: ignore[arg-type]
        outcome=Outcome.OK,
        skip_reason=None,
        skip_detail=None,
        error_record_id=None,
        dispatcher="LocalDispatcher",
        started_at=T0 + timedelta(microseconds=n),
        finished_at=T0 + timedelta(seconds=1, microseconds=n),
        attempts=1,
        pirn_like_version="9.9.9",
    )
    return rec._replace(**changes)


# -- runs -------------------------------------------------------------------------


async def test_runs_round_trip_exactly(history: RunHistory) -> None:
    started = run_record(
        "r1",
        started=T0.astimezone(PLUS_TWO),
        status=RunStatus.RUNNING,
        finished_at=None,
        error_ids=[],
        exceptions=[],
    )
    await history.record_run_started(started)
    assert await history.get_run("r1") == started
    finished = run_record("r1", started=T0.astimezone(PLUS_TWO))
    await history.record_run_finished(finished)
    got = await history.get_run("r1")
    assert got == finished
    assert got is not None
    assert got.status is RunStatus.SUCCEEDED
    assert got.started_at == T0
    assert await history.get_run("r2") is None


async def test_starting_a_run_again_replaces_it(history: RunHistory) -> None:
    await history.record_run_started(run_record("r1", status=RunStatus.RUNNING))
    await history.record_run_finished(run_record("r1", status=RunStatus.FAILED))
    resumed = run_record("r1", started=T0 + timedelta(hours=1), status=RunStatus.RUNNING)
    await history.record_run_started(resumed)
    assert await history.get_run("r1") == resumed
    assert await history.list_runs() == [resumed]


async def test_claiming_a_run_id_succeeds_once(history: RunHistory) -> None:
    first = run_record("r1", status=RunStatus.RUNNING, finished_at=None)
    assert await history.claim_run(first) is True
    assert await history.claim_run(run_record("r1", started=T0 + timedelta(hours=1))) is False
    assert await history.get_run("r1") == first


async def test_concurrent_claims_of_one_run_id_have_one_winner(persistent: Backend) -> None:
    handles = [persistent.make() for _ in range(4)]
    for handle in handles:
        await handle.__aenter__()
    try:
        wins: list[bool] = []

        async def claim(handle: RunHistory, n: int) -> None:
            record = run_record("contested", started=T0 + timedelta(seconds=n))
            wins.append(await handle.claim_run(record))

        async with anyio.create_task_group() as tg:
            for n, handle in enumerate(handles):
                tg.start_soon(claim, handle, n)
        assert sorted(wins) == [False, False, False, True]
    finally:
        for handle in handles:
            await handle.__aexit__(None, None, None)


async def test_list_runs_is_newest_first_and_filters(history: RunHistory) -> None:
    hour = timedelta(hours=1)
    statuses = [RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.SUCCEEDED, RunStatus.CANCELLED]
    runs = [
        run_record(f"r{i}", started=T0 + i * hour, status=status)
        for i, status in enumerate(statuses)
    ]
    for run in (runs[2], runs[0], runs[3], runs[1]):  # recorded out of start order
        await history.record_run_started(run)
    newest_first = runs[::-1]
    assert await history.list_runs() == newest_first
    assert await history.list_runs(limit=2) == newest_first[:2]
    assert await history.list_runs(limit=0) == []
    assert await history.list_runs(status=RunStatus.SUCCEEDED) == [runs[2], runs[0]]
    assert await history.list_runs(status=RunStatus.TIMED_OUT) == []
    assert await history.list_runs(started_before=T0 + 2 * hour) == [runs[1], runs[0]]
    in_plus_two = (T0 + 2 * hour).astimezone(PLUS_TWO)
    assert await history.list_runs(started_before=in_plus_two) == [runs[1], runs[0]]
    assert await history.list_runs(
        status=RunStatus.SUCCEEDED, started_before=T0 + 3 * hour, limit=1
    ) == [runs[2]]


# -- lineage ----------------------------------------------------------------------


def every_kind_of_record(run_id: str) -> list[KnotLineage]:
    """Records that use every field and every optional value."""
    return [
        lineage(
            run_id,
            "cached",
            1,
            cache_key="sha256:key",
            cached_from="r0",
            cache_key_parts={"code": "sha256:c", "config": "sha256:f", "constant:n": "sha256:n"},
            started_at=(T0 + timedelta(microseconds=1)).astimezone(PLUS_TWO),
        ),
        lineage(
            run_id,
            "failed",
            2,
            output_hash=None,
            outcome=Outcome.ERR,
            error_record_id="sha256:err",
            attempts=3,
            cache_key="sha256:key",
            cache_key_parts={},
            dispatcher="ThreadDispatcher",
        ),
        lineage(
            run_id,
            "skipped",
            3,
            output_hash=None,
            outcome=Outcome.SKIPPED,
            skip_reason=SkipReason.GATE_CLOSED,
            skip_detail="gate 'g' closed: ünïcode",
            parent_input_hashes={},
            parent_knot_ids={},
        ),
        lineage(run_id, "cancelled", 4, output_hash=None, outcome=Outcome.CANCELLED),
    ]


async def test_lineage_round_trips_with_every_field(history: RunHistory) -> None:
    records = every_kind_of_record("r1")
    await history.record_lineage(records)
    got = await history.get_lineage("r1")
    assert got == records
    for rec in got:
        assert type(rec) is KnotLineage
        assert type(rec.outcome) is Outcome
        assert rec.started_at.utcoffset() is not None
    assert got[2].skip_reason is SkipReason.GATE_CLOSED
    assert got[0].cache_key_parts == {
        "code": "sha256:c",
        "config": "sha256:f",
        "constant:n": "sha256:n",
    }
    assert await history.get_lineage("r2") == []


async def test_lineage_comes_back_in_the_order_recorded(history: RunHistory) -> None:
    # Knot ids in reverse alphabetical order and batches interleaved across runs:
    # only the recording order explains the answer.
    first = [lineage("r1", f"k{9 - i}", i) for i in range(5)]
    other = [lineage("r2", f"k{9 - i}", i) for i in range(3)]
    second = [lineage("r1", f"k{4 - i}", 10 + i) for i in range(5)]
    for batch in (first, other, second, []):
        await history.record_lineage(batch)
    assert await history.get_lineage("r1") == first + second
    assert await history.get_lineage("r2") == other
    assert await history.query_lineage_by_knot_id("k9") == [first[0], other[0]]


async def test_lineage_queries(history: RunHistory) -> None:
    records = [
        lineage("r1", "load", 0, parent_input_hashes={}, output_hash="sha256:v"),
        lineage("r1", "use", 1, parent_input_hashes={"a": "sha256:v", "b": "sha256:v"}),
        lineage("r2", "load", 2, parent_input_hashes={}, output_hash="sha256:v"),
        lineage("r2", "other", 3, parent_input_hashes={"z": "sha256:v"}, cache_key="sha256:k"),
        lineage("r2", "again", 4, output_hash=None, outcome=Outcome.ERR, cache_key="sha256:k"),
    ]
    await history.record_lineage(records[:2])
    await history.record_lineage(records[2:])
    assert await history.query_lineage_by_output_hash("sha256:v") == [records[0], records[2]]
    # A record that consumed the value under two input names is listed once.
    assert await history.query_lineage_by_input_hash("sha256:v") == [records[1], records[3]]
    assert await history.query_lineage_by_input_hash("sha256:shared") == [records[4]]
    assert await history.query_lineage_by_knot_id("load") == [records[0], records[2]]
    assert await history.query_lineage_by_cache_key("sha256:k") == [records[3], records[4]]
    assert await history.query_lineage_by_output_hash("sha256:nothing") == []
    assert await history.query_lineage_by_input_hash("sha256:nothing") == []
    assert await history.query_lineage_by_knot_id("nothing") == []
    assert await history.query_lineage_by_cache_key("sha256:nothing") == []


async def test_a_large_batch_is_written_and_queried(history: RunHistory) -> None:
    records = [
        lineage(f"r{i % 10}", f"k{i % 100}", i, cache_key=f"sha256:key-{i % 1000}")
        for i in range(20_000)
    ]
    await history.record_lineage(records)
    start = time.monotonic()
    assert await history.get_lineage("r3") == records[3::10]
    assert await history.query_lineage_by_knot_id("k42") == records[42::100]
    assert await history.query_lineage_by_cache_key("sha256:key-7") == records[7::1000]
    assert len(await history.query_lineage_by_input_hash("sha256:shared")) == 20_000
    for i in range(0, 20_000, 200):
        rec = records[i]
        assert await history.query_lineage_by_output_hash(rec.output_hash or "") == [rec]
        assert await history.query_lineage_by_input_hash(f"sha256:in-{i}") == [rec]
    # Indexed lookups take milliseconds; this only catches a scan per query.
    assert time.monotonic() - start < 20


# -- deleting ---------------------------------------------------------------------


async def test_delete_runs_removes_runs_and_their_lineage(history: RunHistory) -> None:
    for run_id in ("r1", "r2", "r3"):
        await history.record_run_started(run_record(run_id))
        await history.record_lineage(
            [lineage(run_id, "k", 0, cache_key="sha256:key"), lineage(run_id, "j", 1)]
        )
    assert await history.delete_runs(["r1", "r3", "r1", "unknown"]) == 2
    assert await history.get_run("r1") is None
    assert await history.get_lineage("r1") == []
    assert await history.get_lineage("r3") == []
    kept = await history.get_lineage("r2")
    assert len(kept) == 2
    assert await history.list_runs() == [run_record("r2")]
    assert await history.query_lineage_by_knot_id("k") == kept[:1]
    assert await history.query_lineage_by_cache_key("sha256:key") == kept[:1]
    assert await history.query_lineage_by_input_hash("sha256:shared") == kept
    assert await history.query_lineage_by_output_hash(kept[0].output_hash or "") == kept[:1]
    assert await history.query_lineage_by_output_hash("sha256:out-r1-k-0") == []
    assert await history.delete_runs([]) == 0
    assert await history.delete_runs(["r1"]) == 0


async def test_delete_runs_handles_many_ids(history: RunHistory) -> None:
    ids = [f"r{i}" for i in range(600)]  # more than a SQL backend binds at once
    for i, run_id in enumerate(ids):
        await history.record_run_started(run_record(run_id, started=T0 + timedelta(seconds=i)))
    await history.record_lineage([lineage(run_id, "k", i) for i, run_id in enumerate(ids)])
    assert await history.delete_runs(ids[1:]) == 599
    assert await history.list_runs() == [run_record("r0")]
    assert await history.query_lineage_by_input_hash("sha256:shared") == [lineage("r0", "k")]


async def test_a_failed_delete_deletes_nothing(persistent: Backend) -> None:
    async with persistent.make() as history:
        ids = [f"r{i}" for i in range(600)]
        for run_id in ids:
            await history.record_run_started(run_record(run_id))
        await history.record_lineage([lineage(run_id, "k") for run_id in ids])
        # The second group of ids cannot be bound: the first group's deletes roll back.
        with pytest.raises(BackendError):
            await history.delete_runs([*ids, object()])  # type: ignore[list-item]
        assert len(await history.list_runs(limit=1_000)) == 600
        assert len(await history.query_lineage_by_knot_id("k")) == 600


# -- lifecycle --------------------------------------------------------------------


async def test_reopening_sees_everything(persistent: Backend) -> None:
    runs = [run_record(f"r{i}", started=T0 + timedelta(minutes=i)) for i in range(3)]
    records = [rec for run in runs for rec in every_kind_of_record(run.run_id)]
    async with persistent.make() as history:
        for run in runs:
            await history.record_run_started(run)
        await history.record_lineage(records)
    async with persistent.make() as history:
        assert await history.list_runs() == runs[::-1]
        assert [rec for run in runs for rec in await history.get_lineage(run.run_id)] == records
        assert len(await history.query_lineage_by_cache_key("sha256:key")) == 6
        await history.record_lineage([lineage("r9", "more")])
        assert (await history.query_lineage_by_knot_id("more"))[0].run_id == "r9"


async def _count(backend: Backend, table: str) -> int:
    rows = await anyio.to_thread.run_sync(fetch_sql, backend.url, f"SELECT COUNT(*) FROM {table}")
    return int(rows[0][0])


async def test_lineage_is_journaled_then_indexed_before_the_next_query(
    persistent: Backend,
) -> None:
    async with persistent.make() as writer:
        await writer.record_lineage([lineage("r1", f"k{n}", n) for n in range(3)])
        assert await _count(persistent, "pirn_like_lineage_journal") == 1
        assert await _count(persistent, "pirn_like_lineage") == 0
        if persistent.kind == "duckdb":  # one process per DuckDB file: read through it
            reader = writer
            got = await reader.get_lineage("r1")
        else:
            async with persistent.make() as reader:
                got = await reader.get_lineage("r1")
        assert [rec.knot_id for rec in got] == ["k0", "k1", "k2"]
        assert got[0] == lineage("r1", "k0", 0)
        assert await _count(persistent, "pirn_like_lineage_journal") == 0
        assert await _count(persistent, "pirn_like_lineage") == 3
        assert await _count(persistent, "pirn_like_lineage_inputs") == 6


async def test_closing_a_writer_leaves_the_lineage_tables_complete(persistent: Backend) -> None:
    async with persistent.make() as writer:
        await writer.record_lineage([lineage("r1", "a", 1)])
        await writer.record_lineage([lineage("r1", "b", 2)])
    assert await _count(persistent, "pirn_like_lineage_journal") == 0
    assert await _count(persistent, "pirn_like_lineage") == 2


async def test_a_writer_moves_a_long_journal_itself(
    persistent: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_sql, "_JOURNAL_LIMIT", 5)
    async with persistent.make() as writer:
        await writer.record_lineage([lineage("r1", f"k{n}", n) for n in range(3)])
        assert await _count(persistent, "pirn_like_lineage_journal") == 1
        await writer.record_lineage([lineage("r1", f"k{n}", n) for n in range(3, 6)])
        assert await _count(persistent, "pirn_like_lineage_journal") == 0
        assert await _count(persistent, "pirn_like_lineage") == 6


async def test_a_version_1_database_is_upgraded(persistent: Backend) -> None:
    async with persistent.make() as history:
        await history.record_run_started(run_record("r1"))
    downgrade = ["DROP TABLE pirn_like_lineage_journal", "UPDATE pirn_like_schema SET version = 1"]
    if persistent.kind == "duckdb":
        downgrade.insert(1, "DROP SEQUENCE pirn_like_journal_seq")
    for sql in downgrade:
        await anyio.to_thread.run_sync(execute_sql, persistent.url, sql)
    async with persistent.make() as history:
        await history.record_lineage([lineage("r1", "k", 1)])
        assert [rec.knot_id for rec in await history.get_lineage("r1")] == ["k"]
        assert await history.get_run("r1") == run_record("r1")
    version = await anyio.to_thread.run_sync(
        fetch_sql, persistent.url, "SELECT version FROM pirn_like_schema"
    )
    assert version == [(SQLITE.version,)]


async def test_a_run_stored_before_exceptions_were_kept_still_loads(
    persistent: Backend,
) -> None:
    async with persistent.make() as history:
        await history.record_run_finished(run_record("r1"))
    # The JSON a RunRecord had before it kept exceptions, written as an old version did.
    old = json.dumps(run_record("r1").model_dump(mode="json", exclude={"exceptions"}))
    sql = "UPDATE pirn_like_runs SET record = '{}' WHERE run_id = 'r1'"
    await anyio.to_thread.run_sync(execute_sql, persistent.url, sql.format(old.replace("'", "''")))
    async with persistent.make() as history:
        assert await history.get_run("r1") == run_record("r1", exceptions=[])


async def test_a_newer_schema_is_refused(persistent: Backend) -> None:
    async with persistent.make() as history:
        await history.record_run_started(run_record("r1"))
    sql = "UPDATE pirn_like_schema SET version = 999"
    await anyio.to_thread.run_sync(execute_sql, persistent.url, sql)
    with pytest.raises(SchemaVersionError) as caught:
        async with persistent.make():
            pass
    message = str(caught.value)
    assert "999" in message
    assert f"supports up to version {SQLITE.version}" in message
    assert "upgrade pirn_like" in message
    assert redact(persistent.url) in message


async def test_use_before_open_and_after_close_is_refused(persistent: Backend) -> None:
    history = persistent.make()
    with pytest.raises(ClosedResourceError, match="is not open"):
        await history.get_run("r1")
    with pytest.raises(ClosedResourceError, match="is not open"):
        await history.record_lineage([])
    async with history:
        await history.record_run_started(run_record("r1"))
    with pytest.raises(ClosedResourceError, match="was closed"):
        await history.list_runs()
    with pytest.raises(ClosedResourceError, match="was closed"):
        await history.delete_runs(["r1"])
    with pytest.raises(ClosedResourceError, match="was closed"):
        async with history:
            pass


@pytest.mark.parametrize("persistent", ["sqlite", "postgres"], indirect=True)
async def test_concurrent_opens_of_a_fresh_database_create_the_schema_once(
    persistent: Backend,
) -> None:
    histories = [persistent.make() for _ in range(4)]
    async with anyio.create_task_group() as tg:
        for history in histories:
            tg.start_soon(history.__aenter__)
    try:
        for i, history in enumerate(histories):
            await history.record_run_started(run_record(f"r{i}"))
        assert len(await histories[0].list_runs()) == 4
    finally:
        for history in histories:
            await history.__aexit__(None, None, None)


# -- with the engine --------------------------------------------------------------


@knot
async def scale(x: int, factor: int) -> int:
    return x * factor


@knot
async def add(a: int, b: int) -> int:
    return a + b


async def test_a_tapestry_records_its_runs(history: RunHistory) -> None:
    with Tapestry(history=history) as t:
        x = Parameter("x", int)
        d = scale(x=x, factor=2, _config=KnotConfig(id="d"))
        add(a=x, b=d, _config=KnotConfig(id="answer"))
    async with t:  # opens the (already open) history again and closes only that
        first = await t.run(RunRequest(parameters={"x": 5}, labels={"n": "1"}))
        second = await t.run(RunRequest(parameters={"x": 6}))
    for result in (first, second):
        assert await history.get_lineage(result.run_id) == result.lineage
        run = await history.get_run(result.run_id)
        assert run is not None
        assert run.status is RunStatus.SUCCEEDED
        assert run.knot_count == len(result.lineage)
        assert run.started_at == result.started_at
    assert [r.run_id for r in await history.list_runs()] == [second.run_id, first.run_id]
    out = first.lineage_for("d").output_hash
    assert out is not None
    assert await history.query_lineage_by_input_hash(out) == [first.lineage_for("answer")]


@knot
async def explode(a: int) -> int:
    raise ValueError("m" * a + "END")


async def test_a_failed_run_keeps_its_exceptions_cut_to_size(history: RunHistory) -> None:
    with Tapestry(history=history) as t:
        explode(a=Parameter("size", int), _config=KnotConfig(id="boom"))
    async with t:
        small = await t.run(RunRequest(parameters={"size": 3}))
        huge = await t.run(RunRequest(parameters={"size": 10 * STORED_MESSAGE_CHARS}))
    small_run = await history.get_run(small.run_id)
    assert small_run is not None
    assert small_run.exceptions == small.exceptions  # whole: type, message, traceback
    assert small_run.exceptions[0].message == "mmmEND"
    huge_run = await history.get_run(huge.run_id)
    assert huge_run is not None
    [kept], [raised] = huge_run.exceptions, huge.exceptions
    assert (kept.id, kept.type, kept.knot_id) == (raised.id, raised.type, "boom")
    # The message's start and the traceback's end (where it was raised), each with a
    # note of how much was cut: together exactly the limit.
    assert len(kept.message) == STORED_MESSAGE_CHARS
    head, note = kept.message.split("\n[... ")
    assert raised.message.startswith(head)
    assert len(head) + int(note.split()[0]) == len(raised.message)
    assert len(kept.traceback) == STORED_TRACEBACK_CHARS
    assert kept.traceback.startswith("\n[... ")
    assert raised.traceback.endswith(kept.traceback.split(" ...]\n", 1)[1])
    assert kept.traceback.endswith("mmmEND\n")
    # Past STORED_EXCEPTIONS records, only the ids are kept (in error_ids).
    assert len(stored_exceptions([raised] * (STORED_EXCEPTIONS + 1))) == STORED_EXCEPTIONS


# -- URLs and connection failures -------------------------------------------------


async def test_sqlite_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rel").mkdir()
    relative = SQLiteHistory.from_url("sqlite:///rel/h.db", busy_timeout=5)
    assert (relative.path, relative.busy_timeout) == ("rel/h.db", 5)
    async with relative as history:
        await history.record_run_started(run_record("r1"))
    assert (tmp_path / "rel" / "h.db").exists()
    absolute = SQLiteHistory.from_url(f"sqlite:///{tmp_path}/rel/h.db")
    assert absolute.path == f"{tmp_path}/rel/h.db"
    async with absolute as history:
        assert await history.get_run("r1") == run_record("r1")
    async with SQLiteHistory.from_url("sqlite:///:memory:") as history:
        await history.record_run_started(run_record("r1"))
        assert await history.get_run("r1") == run_record("r1")
    with pytest.raises(ValueError, match="sqlite://"):
        SQLiteHistory.from_url("duckdb:///x.db")
    with pytest.raises(ValueError, match="names no database file"):
        SQLiteHistory.from_url("sqlite://")


async def test_duckdb_urls(tmp_path: Path) -> None:
    file = DuckDBHistory.from_url(f"duckdb:///{tmp_path}/h.duckdb")
    assert file.path == f"{tmp_path}/h.duckdb"
    async with DuckDBHistory.from_url("duckdb:///:memory:") as history:
        await history.record_lineage([lineage("r1", "k")])
        assert await history.get_lineage("r1") == [lineage("r1", "k")]
    with pytest.raises(ValueError, match="duckdb://"):
        DuckDBHistory.from_url(f"sqlite:///{tmp_path}/h.duckdb")


async def test_postgres_urls(postgres_db_url: str) -> None:
    short = postgres_db_url.replace("postgresql://", "postgres://", 1)
    async with PostgresHistory.from_url(short, min_size=0, max_size=2) as history:
        await history.record_run_started(run_record("r1"))
    async with PostgresHistory(postgres_db_url) as history:
        assert await history.get_run("r1") == run_record("r1")
    with pytest.raises(ValueError, match="postgresql://"):
        PostgresHistory.from_url("mysql://u:secret@host/db")
    with pytest.raises(ValueError, match="min_size"):
        PostgresHistory(postgres_db_url, min_size=3, max_size=2)


@pytest.mark.parametrize("kind", ["sqlite", "duckdb"])
async def test_a_file_that_cannot_be_opened_is_a_backend_error(kind: str, tmp_path: Path) -> None:
    url = f"{kind}:///{tmp_path}/missing-dir/h.db"
    history = SQLiteHistory.from_url(url) if kind == "sqlite" else DuckDBHistory.from_url(url)
    with pytest.raises(BackendError, match=f"cannot open {url}"):
        async with history:
            pass


def _all_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc.__cause__) + repr(exc.__context__)


async def test_an_unreachable_postgres_is_a_backend_error() -> None:
    port = free_port()
    url = f"postgresql://someone:s3cret-pw@127.0.0.1:{port}/db"
    with pytest.raises(BackendError) as caught:
        async with PostgresHistory(url):
            pass
    message = str(caught.value)
    assert f"cannot open postgresql://someone:***@127.0.0.1:{port}/db" in message
    assert "refused" in message.lower()
    assert "s3cret-pw" not in _all_text(caught.value)


async def test_a_wrong_password_is_not_shown(postgres_password_url: str) -> None:
    correct = urlsplit(postgres_password_url).password or ""
    wrong_password = f"wrong-{correct}"
    url = postgres_password_url.replace(correct, wrong_password)
    with pytest.raises(BackendError, match="password authentication failed") as caught:
        async with PostgresHistory(url):
            pass
    assert wrong_password not in _all_text(caught.value)
    assert "***" in str(caught.value)


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_duckdb_runs_on_trio(tmp_path: Path) -> None:
    async with DuckDBHistory(tmp_path / "h.duckdb") as history:
        await history.record_run_started(run_record("r1"))
        await history.record_lineage(every_kind_of_record("r1"))
        assert await history.get_lineage("r1") == every_kind_of_record("r1")
        assert await history.delete_runs(["r1"]) == 1
