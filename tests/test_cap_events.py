"""The event store: one conformance suite over the in-memory, SQLite and PostgreSQL
stores (concurrency, the bi-temporal worked example, the bridge's cursor), and what
only PostgreSQL needs (seq order is commit order)."""

from __future__ import annotations

import functools
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from pirn_like import BackendError, ClosedResourceError
from pirn_like.capabilities.events import (
    Event,
    EventKind,
    EventStore,
    InMemoryEventStore,
    InvalidEventError,
    PostgresEventStore,
    SQLiteEventStore,
    VersionConflictError,
    event_store_from_url,
)
from pirn_like.capabilities.events._postgres import advisory_lock_key

pytestmark = pytest.mark.anyio

CASES = [
    ("memory", "asyncio"),
    ("memory", "trio"),
    ("sqlite", "asyncio"),
    ("sqlite", "trio"),
    ("postgres", "asyncio"),  # asyncpg runs on asyncio only
]
UPDATED, CREATED = EventKind.UPDATED, EventKind.CREATED


def day(month: int, d: int, hour: int = 0) -> datetime:
    return datetime(2026, month, d, hour, tzinfo=UTC)


@dataclass
class Clock:
    """A clock the test moves by hand: transaction times are exact."""

    now: datetime = field(default_factory=lambda: day(1, 1))

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Backend:
    kind: str
    url: str
    clock: Clock
    shared: InMemoryEventStore | None = None

    def make(self) -> EventStore:
        """A new handle on the same events (its own connection where there is one)."""
        if self.kind == "memory":
            assert self.shared is not None
            return self.shared
        return event_store_from_url(self.url, clock=self.clock)


@pytest.fixture(params=CASES, ids=[f"{k}-{b}" for k, b in CASES])
def case(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param


@pytest.fixture
def anyio_backend(case: tuple[str, str]) -> str:
    return case[1]


@pytest.fixture
def backend(case: tuple[str, str], tmp_path: Path, request: pytest.FixtureRequest) -> Backend:
    kind = case[0]
    clock = Clock()
    if kind == "memory":
        return Backend(kind, "memory://t", clock, InMemoryEventStore("t", clock=clock))
    if kind == "sqlite":
        return Backend(kind, f"sqlite:///{tmp_path / 'events.db'}", clock)
    return Backend(kind, request.getfixturevalue("postgres_db_url"), clock)


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[EventStore]:
    async with backend.make() as opened:
        yield opened


async def test_append_assigns_versions_sequence_and_times(
    store: EventStore, backend: Backend
) -> None:
    backend.clock.now = day(1, 10)
    payload = {"name": "Zoë", "tags": ["a", "b"], "nested": {"n": 1.5, "ok": True, "x": None}}
    first = await store.append("customer", "c1", CREATED, payload, expected_version=0, actor="al")
    backend.clock.now = day(1, 11)
    second = await store.append(
        "customer", "c1", UPDATED, {"name": "Zoe"}, expected_version=1, valid_from=day(1, 5)
    )
    assert (first.version, first.kind, first.actor, first.corrects) == (1, CREATED, "al", None)
    assert first.recorded_at == first.valid_from == day(1, 10)  # valid time defaults to now
    assert (second.version, second.valid_from, second.recorded_at) == (2, day(1, 5), day(1, 11))
    assert first.seq < second.seq
    assert first.key == "customer/c1@1"
    # What the store returns is what it reads back, payload and times exact.
    assert await store.history("customer", "c1") == [first, second]
    assert (await store.history("customer", "c1"))[0].payload == payload
    assert await store.history("customer", "other") == []
    assert await store.current("customer", "other") is None


async def test_a_stale_expected_version_names_both_versions_and_writes_nothing(
    store: EventStore,
) -> None:
    await store.append("account", "a", CREATED, {"n": 0}, expected_version=0)
    await store.append("account", "a", UPDATED, {"n": 1}, expected_version=1)
    with pytest.raises(VersionConflictError) as caught:
        await store.append("account", "a", UPDATED, {"n": 9}, expected_version=1)
    err = caught.value
    assert (err.entity_type, err.entity_id, err.expected, err.actual) == ("account", "a", 1, 2)
    assert "account/a" in str(err)
    assert "expected version 1" in str(err)
    assert "version 2" in str(err)
    with pytest.raises(VersionConflictError, match="expected version 0"):
        await store.append("account", "a", CREATED, {}, expected_version=0)
    assert [e.payload for e in await store.history("account", "a")] == [{"n": 0}, {"n": 1}]
    # None appends without a check.
    third = await store.append("account", "a", UPDATED, {"n": 2}, expected_version=None)
    assert third.version == 3


async def test_events_that_cannot_follow_the_history_are_refused(store: EventStore) -> None:
    with pytest.raises(InvalidEventError, match="first event must be CREATED"):
        await store.append("t", "x", UPDATED, {}, expected_version=0)
    await store.append("t", "x", CREATED, {}, expected_version=0)
    with pytest.raises(InvalidEventError, match="already exists"):
        await store.append("t", "x", CREATED, {}, expected_version=None)
    with pytest.raises(InvalidEventError, match=r"version it corrects \(1 to 1\), got 5"):
        await store.append("t", "x", EventKind.CORRECTED, {}, expected_version=1, corrects=5)
    with pytest.raises(InvalidEventError, match="only a CORRECTED event"):
        await store.append("t", "x", UPDATED, {}, expected_version=1, corrects=1)
    fix = await store.append(
        "t", "x", EventKind.CORRECTED, {"v": 1}, expected_version=1, corrects=1
    )
    with pytest.raises(
        InvalidEventError, match="already corrected by version 2; correct version 2"
    ):
        await store.append("t", "x", EventKind.CORRECTED, {}, expected_version=2, corrects=1)
    await store.append("t", "x", EventKind.DELETED, {}, expected_version=2)
    with pytest.raises(InvalidEventError, match="was deleted"):
        await store.append("t", "x", UPDATED, {}, expected_version=3)
    with pytest.raises(ValueError, match="valid_from must be time-zone aware"):
        await store.append(
            "t", "y", CREATED, {}, expected_version=0, valid_from=datetime(2026, 1, 1)
        )
    with pytest.raises(TypeError, match=r"JSON object of JSON values \(when: "):
        await store.append("t", "y", CREATED, {"when": day(1, 1)}, expected_version=0)  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="entity_id must be a non-empty string"):
        await store.append("t", "", CREATED, {}, expected_version=0)
    assert [e.version for e in await store.history("t", "x")] == [1, fix.version, 3]
    assert await store.history("t", "y") == []


async def test_a_salary_corrected_retroactively(store: EventStore, backend: Backend) -> None:
    """The worked example of docs/events.md: as-of queries before and after the
    correction's transaction time differ; nothing is rewritten."""
    clock = backend.clock
    clock.now = day(1, 10)  # hired on Jan 10, paid from Jan 1
    v1 = await store.append(
        "employee", "e7", CREATED, {"salary": 100}, expected_version=0, valid_from=day(1, 1)
    )
    clock.now = day(3, 5)  # a raise, from Mar 1
    v2 = await store.append(
        "employee", "e7", UPDATED, {"salary": 120}, expected_version=1, valid_from=day(3, 1)
    )
    clock.now = day(4, 20)  # HR finds the starting salary was 110: fix version 1
    v3 = await store.append(
        "employee", "e7", EventKind.CORRECTED, {"salary": 110}, expected_version=2, corrects=1
    )
    assert (v3.valid_from, v3.recorded_at, v3.corrects) == (day(1, 1), day(4, 20), 1)

    async def salary(valid: datetime, known: datetime | None = None) -> int | None:
        event = await store.as_of_valid("employee", "e7", valid, recorded_at=known)
        return None if event is None else int(event.payload["salary"])  # type: ignore[arg-type]

    assert await salary(day(2, 1)) == 110  # February, as known now: corrected
    assert await salary(day(2, 1), known=day(4, 1)) == 100  # as known before the fix
    assert await salary(day(2, 1), known=day(4, 20)) == 110  # as known from the fix on
    assert await salary(day(3, 15)) == 120  # the raise stands: the fix was to January
    assert await salary(day(3, 15), known=day(3, 1)) == 100  # the raise not yet recorded
    assert await salary(day(1, 1) - timedelta(microseconds=1)) is None  # not employed yet
    assert await store.as_of_transaction("employee", "e7", day(1, 5)) is None  # not recorded
    assert await store.as_of_transaction("employee", "e7", day(4, 1)) == v2
    assert await store.as_of_transaction("employee", "e7", day(4, 1), valid_time=day(2, 1)) == v1
    assert await store.as_of_transaction("employee", "e7", day(5, 1), valid_time=day(2, 1)) == v3
    assert await store.current("employee", "e7") == v2

    clock.now = day(6, 2)  # leaves on May 31
    gone = await store.append(
        "employee", "e7", EventKind.DELETED, {}, expected_version=3, valid_from=day(5, 31)
    )
    assert await store.current("employee", "e7") is None
    assert await salary(day(5, 1)) == 120
    assert await salary(day(6, 1), known=day(6, 1)) == 120  # the leaving not yet recorded
    assert await store.history("employee", "e7") == [v1, v2, v3, gone]  # the audit trail


async def test_transaction_time_never_runs_backwards(store: EventStore, backend: Backend) -> None:
    backend.clock.now = day(2, 1)
    first = await store.append("t", "a", CREATED, {}, expected_version=0)
    backend.clock.now = day(1, 1)  # another writer's clock is behind
    second = await store.append("t", "b", CREATED, {}, expected_version=0)
    assert second.recorded_at == first.recorded_at == day(2, 1)
    assert second.seq > first.seq


async def test_events_since_pages_by_seq_and_filters_by_entity_type(store: EventStore) -> None:
    written: list[Event] = []
    for i in range(5):
        kind = "order" if i % 2 == 0 else "invoice"
        written.append(await store.append(kind, f"k{i}", CREATED, {"i": i}, expected_version=0))
    page = await store.events_since(0, limit=2)
    assert page == written[:2]
    assert await store.events_since(page[-1].seq, limit=10) == written[2:]
    assert await store.events_since(written[-1].seq, limit=10) == []
    orders = await store.events_since(0, limit=10, entity_types=["order"])
    assert [e.payload["i"] for e in orders] == [0, 2, 4]
    assert await store.events_since(written[0].seq, limit=1, entity_types={"order"}) == [written[2]]
    assert await store.events_since(0, limit=10, entity_types=[]) == []
    with pytest.raises(ValueError, match="limit must be at least 1"):
        await store.events_since(0, limit=0)
    with pytest.raises(TypeError, match="collection of names"):
        await store.events_since(0, limit=1, entity_types="order")


async def test_concurrent_writers_lose_no_update(backend: Backend) -> None:
    """Writers on their own connections race on one counter (read, then append at
    the version read; retry on conflict) and create entities of their own."""
    writers, increments = 4, 5
    handles = [backend.make() for _ in range(writers)]
    conflicts = 0
    async with handles[0] as first:
        await first.append("counter", "c", CREATED, {"n": 0}, expected_version=0)

        async def writer(store: EventStore, w: int) -> None:
            nonlocal conflicts
            async with store:
                for i in range(increments):
                    await store.append("own", f"{w}-{i}", CREATED, {}, expected_version=0)
                    while True:
                        seen = await store.current("counter", "c")
                        assert seen is not None
                        n = seen.payload["n"]
                        assert isinstance(n, int)
                        try:
                            await store.append(
                                "counter", "c", UPDATED, {"n": n + 1}, expected_version=seen.version
                            )
                        except VersionConflictError:
                            conflicts += 1
                            continue
                        break

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for w, handle in enumerate(handles[1:] if backend.kind != "memory" else handles):
                    tg.start_soon(writer, handle, w)
        active = writers - 1 if backend.kind != "memory" else writers
        counter = await first.history("counter", "c")
        assert [e.version for e in counter] == list(range(1, active * increments + 2))
        assert counter[-1].payload == {"n": active * increments}
        everything = await first.events_since(0, limit=1000)
        assert [e.seq for e in everything] == list(range(1, len(everything) + 1))
        assert len(everything) == 1 + 2 * active * increments
        assert sorted(e.recorded_at for e in everything) == [e.recorded_at for e in everything]


async def test_events_outlive_the_store_and_a_closed_store_refuses_use(backend: Backend) -> None:
    async with backend.make() as store:
        written = await store.append("t", "a", CREATED, {"x": 1}, expected_version=0)
    with pytest.raises(ClosedResourceError, match="was closed"):
        await store.current("t", "a")
    if backend.kind != "memory":
        async with backend.make() as reopened:
            assert await reopened.history("t", "a") == [written]


_WRITER = """
import sys

import anyio

from pirn_like.capabilities.events import EventKind, SQLiteEventStore, VersionConflictError


async def main(path: str, times: int) -> None:
    async with SQLiteEventStore(path) as store:
        for _ in range(times):
            while True:
                seen = await store.current("counter", "c")
                try:
                    await store.append(
                        "counter", "c", EventKind.UPDATED, {"n": seen.payload["n"] + 1},
                        expected_version=seen.version,
                    )
                    break
                except VersionConflictError:
                    pass


anyio.run(main, sys.argv[1], int(sys.argv[2]))
"""


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_sqlite_writers_in_other_processes_lose_no_update(tmp_path: Path) -> None:
    path, processes, times = tmp_path / "shared.db", 3, 6
    async with SQLiteEventStore(path) as store:
        await store.append("counter", "c", CREATED, {"n": 0}, expected_version=0)
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for _ in range(processes):
                    tg.start_soon(
                        functools.partial(
                            anyio.run_process,
                            [sys.executable, "-c", _WRITER, str(path), str(times)],
                            cwd=Path(__file__).parents[1],
                        )
                    )
        counter = await store.history("counter", "c")
        assert [e.version for e in counter] == list(range(1, processes * times + 2))
        assert [e.payload["n"] for e in counter] == list(range(processes * times + 1))
        assert [e.seq for e in counter] == list(range(1, processes * times + 2))


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_database_errors_name_the_store(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match=r"cannot open the event store sqlite:///.*missing"):
        await SQLiteEventStore(tmp_path / "missing" / "e.db").current("t", "a")
    async with SQLiteEventStore(tmp_path / "e.db", table="audit") as store:
        await store.append("t", "a", CREATED, {}, expected_version=0)
        with sqlite3.connect(tmp_path / "e.db") as raw:
            raw.execute("ALTER TABLE audit RENAME TO gone")
        with pytest.raises(BackendError, match=r"e\.db#audit: no such table: audit"):
            await store.history("t", "a")


def test_importing_the_package_loads_no_driver() -> None:
    code = (
        "import sys, pirn_like.capabilities.events as ev; "
        "print(sorted(m for m in sys.modules if m in {'asyncpg', 'aiosqlite', 'aiokafka', "
        "'glide', 'httpx', 'numpy'})); "
        "print([n for n in ev.__all__ if isinstance(getattr(ev, n), type) "
        "and '._' in getattr(ev, n).__module__])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[:2] == ["[]", "[]"]


# -- PostgreSQL: seq order is commit order --------------------------------------------


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_postgres_append_waits_for_an_append_in_flight(postgres_db_url: str) -> None:
    """An append in flight (holding the table's lock, its seq taken, not committed)
    makes the next one wait, so the next gets a higher seq and commits later: a reader
    whose cursor passed the later one cannot have skipped the earlier."""
    import asyncpg

    key = advisory_lock_key("pirn_like_events")
    async with PostgresEventStore(postgres_db_url) as store:
        await store.append("t", "warmup", CREATED, {}, expected_version=0)
        conn = await asyncpg.connect(postgres_db_url)
        try:
            tx = conn.transaction()
            await tx.start()
            await conn.execute("SELECT pg_advisory_xact_lock($1)", key)
            held_seq = await conn.fetchval("SELECT MAX(seq) + 1 FROM pirn_like_events")
            later: list[Event] = []

            async def append_later() -> None:
                later.append(await store.append("t", "later", CREATED, {}, expected_version=0))

            async with anyio.create_task_group() as tg:
                tg.start_soon(append_later)
                with anyio.fail_after(10):
                    # The server has no event for "a lock request is waiting": poll it.
                    while not await conn.fetchval(  # noqa: ASYNC110
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    ):
                        await anyio.sleep(0.01)
                # The waiting append is not visible, so a reader sees nothing past warmup.
                assert [e.entity_id for e in await store.events_since(0, limit=10)] == ["warmup"]
                await conn.execute(
                    "INSERT INTO pirn_like_events VALUES ($1, 't', 'early', 1, 'CREATED', '{}', "
                    "0, 0, '', NULL)",
                    held_seq,
                )
                await tx.commit()
            assert later[0].seq == held_seq + 1
            seen = await store.events_since(1, limit=10)
            assert [(e.entity_id, e.seq) for e in seen] == [
                ("early", held_seq),
                ("later", held_seq + 1),
            ]
        finally:
            await conn.close()


# -- URLs ---------------------------------------------------------------------------


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_stores_by_url_name_where_events_go_without_secrets(tmp_path: Path) -> None:
    sqlite = event_store_from_url(f"sqlite:///{tmp_path / 'e.db'}", table="audit")
    assert isinstance(sqlite, SQLiteEventStore)
    assert sqlite.identity == f"sqlite:///{tmp_path / 'e.db'}#audit"
    pg = event_store_from_url("postgresql://u:hunter2@db.example/app")
    assert isinstance(pg, PostgresEventStore)
    assert pg.identity == "postgresql://u:***@db.example/app#pirn_like_events"
    assert event_store_from_url("memory://x").identity == "memory://x"
    with pytest.raises(ValueError, match=r"no event store for 'mysql://u:\*\*\*@h/d'"):
        event_store_from_url("mysql://u:hunter2@h/d")
    with pytest.raises(ValueError, match="plain identifier"):
        SQLiteEventStore(tmp_path / "e.db", table="x; DROP TABLE y")


def test_constructing_a_store_does_no_io(tmp_path: Path) -> None:
    SQLiteEventStore(tmp_path / "never.db")
    PostgresEventStore("postgresql://nobody@/nowhere?host=/nonexistent")
    assert not (tmp_path / "never.db").exists()
