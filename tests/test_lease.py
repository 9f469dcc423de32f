"""Leases on SQLite, PostgreSQL and ValKey, and a cron fire run once by three processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import datetime, timedelta
from pathlib import Path

import _polling as polling
import anyio
import pytest
from _fixtures_valkey import free_port
from anyio.abc import Process

from pirn_like import BackendError, ClosedResourceError, RunRecord, RunStatus
from pirn_like.backends._sqlite_history import SQLiteHistory
from pirn_like.triggers import Lease, lease_from_url
from pirn_like.triggers._lease_postgres import PostgresLease
from pirn_like.triggers._lease_sqlite import SQLiteLease
from pirn_like.triggers._lease_valkey import ValKeyLease

pytestmark = pytest.mark.anyio

STORES = ["sqlite", "postgres", "valkey"]
SHORT_TTL = 0.3
DEADLINE = 10.0
CHILD = Path(__file__).with_name("_lease_child.py")

MakeLease = Callable[..., Awaitable[Lease]]


@pytest.fixture
def anyio_backend() -> str:
    """aiosqlite and asyncpg run on asyncio only (ValKey on trio: see below)."""
    return "asyncio"


@pytest.fixture(params=STORES)
def lease_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    match request.param:
        case "sqlite":
            return f"sqlite:///{tmp_path / 'leases.db'}"
        case "postgres":
            return str(request.getfixturevalue("postgres_url"))
        case _:
            return str(request.getfixturevalue("valkey_url"))


@pytest.fixture
async def make(lease_url: str) -> AsyncIterator[MakeLease]:
    """Opens leases on one store under a name no other test uses; closes them after."""
    name = f"lease-{uuid.uuid4().hex}"
    async with AsyncExitStack() as stack:

        async def opened(holder: str, ttl: float = 5.0) -> Lease:
            return await stack.enter_async_context(
                lease_from_url(lease_url, name, holder=holder, ttl=ttl)
            )

        yield opened


async def wait_until(condition: Callable[[], Awaitable[bool]], deadline: float = DEADLINE) -> None:
    await polling.wait_until(condition, deadline)


# -- conformance: every store -------------------------------------------------------


async def test_one_holder_at_a_time(make: MakeLease) -> None:
    a, b = await make("a"), await make("b")
    assert await a.acquire()
    first = a.token
    assert first is not None
    assert not await b.acquire()
    assert b.token is None
    assert await a.leader() == await b.leader() == "a"
    # Acquiring again while held extends the same term.
    assert await a.acquire()
    assert a.token == first


async def test_renew_extends_only_the_holders_own_term(make: MakeLease) -> None:
    a, b = await make("a"), await make("b")
    assert not await a.renew()  # never held: renew does not start a term
    assert await a.acquire()
    token = a.token
    assert await a.renew()
    assert a.token == token
    assert not await b.renew()
    assert await b.leader() == "a"


async def test_release_hands_over_at_once_with_a_new_token(make: MakeLease) -> None:
    a, b = await make("a"), await make("b")
    assert await a.acquire()
    old = a.token
    assert old is not None
    await a.release()
    assert a.token is None
    assert await b.leader() is None
    assert await b.acquire()
    assert b.token == old + 1
    assert not await a.renew()


async def test_an_expired_term_passes_to_another_holder(make: MakeLease) -> None:
    a, b = await make("a", SHORT_TTL), await make("b")
    assert await a.acquire()
    old = a.token
    assert old is not None
    await wait_until(b.acquire)
    assert b.token is not None
    assert b.token > old
    # Fencing: the expired holder can neither renew nor write.
    assert not await a.renew()
    assert not await a.write_value("stale")
    assert await b.write_value("fresh")
    assert await a.read_value() == "fresh"


async def test_an_expired_holder_cannot_renew_even_when_nobody_took_over(
    make: MakeLease,
) -> None:
    a = await make("a", SHORT_TTL)
    assert await a.acquire()
    old = a.token
    assert old is not None

    async def expired() -> bool:
        return await a.leader() is None

    await wait_until(expired)
    assert not await a.renew()
    assert a.token is None
    assert await a.acquire()
    assert a.token == old + 1  # a new term


async def test_only_the_current_holder_writes_the_value(make: MakeLease) -> None:
    a, b = await make("a"), await make("b")
    assert await a.read_value() is None
    assert not await a.write_value("unheld")
    assert await a.acquire()
    assert await a.write_value("2025-01-01T00:05:00+00:00")
    assert await b.read_value() == "2025-01-01T00:05:00+00:00"
    assert not await b.write_value("not mine")
    await a.release()
    assert await b.acquire()
    assert await b.read_value() == "2025-01-01T00:05:00+00:00"  # the value outlives terms


async def test_closing_a_lease_releases_it(lease_url: str) -> None:
    name = f"lease-{uuid.uuid4().hex}"
    async with lease_from_url(lease_url, name, holder="a") as a:
        assert await a.acquire()
    async with lease_from_url(lease_url, name, holder="b") as b:
        assert await b.acquire()
        assert await b.leader() == "b"


async def test_a_lease_is_used_only_while_open(lease_url: str) -> None:
    lease = lease_from_url(lease_url, "unused")
    with pytest.raises(ClosedResourceError, match="not open"):
        await lease.acquire()
    async with lease:
        pass
    with pytest.raises(ClosedResourceError, match="was closed"):
        await lease.read_value()
    with pytest.raises(ClosedResourceError, match="opened before"):
        await lease.__aenter__()


# -- URLs, settings and errors ------------------------------------------------------


def test_lease_from_url_picks_the_store_by_scheme(tmp_path: Path) -> None:
    sqlite = lease_from_url(f"sqlite:///{tmp_path / 'x.db'}", "n", holder="h", ttl=3)
    assert isinstance(sqlite, SQLiteLease)
    assert (sqlite.name, sqlite.holder, sqlite.ttl) == ("n", "h", 3.0)
    assert isinstance(lease_from_url("postgresql://u:pw@db.example/x", "n"), PostgresLease)
    assert isinstance(lease_from_url("redis://cache.example:6380/2", "n"), ValKeyLease)
    default = lease_from_url("valkey://cache.example", "n")
    assert str(os.getpid()) in default.holder
    assert default.holder != lease_from_url("valkey://cache.example", "n").holder


@pytest.mark.parametrize(
    ("url", "options", "message"),
    [
        ("mysql://u:s3cret@db/x", {}, r"no lease store for URL 'mysql://u:\*\*\*@db/x'"),
        ("sqlite:///x.db", {"ttl": 0}, "ttl must be a positive number"),
        ("sqlite:///x.db", {"ttl": True}, "ttl must be a positive number"),
        ("sqlite:///x.db", {"holder": ""}, "holder id must not be empty"),
    ],
)
def test_bad_lease_settings_are_refused(url: str, options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        lease_from_url(url, "n", **options)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-empty name"):
        lease_from_url("sqlite:///x.db", "")


async def test_an_unreachable_store_raises_backend_error_naming_the_lease(tmp_path: Path) -> None:
    port = free_port()
    unreachable = [
        lease_from_url(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}", "n"),
        lease_from_url(f"postgresql://u:s3cret@127.0.0.1:{port}/x", "n"),
        ValKeyLease(f"valkey://:s3cret@127.0.0.1:{port}/0", "n", timeout=0.5),
    ]
    for lease in unreachable:
        with pytest.raises(BackendError, match="lease 'n'") as raised:
            await lease.__aenter__()
        assert "s3cret" not in str(raised.value)


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_valkey_lease_works_on_trio(valkey_url: str) -> None:
    name = f"lease-{uuid.uuid4().hex}"
    async with (
        lease_from_url(valkey_url, name, holder="a") as a,
        lease_from_url(valkey_url, name, holder="b") as b,
    ):
        assert await a.acquire()
        assert not await b.acquire()
        assert await a.renew()
        assert await a.write_value("v")
        await a.release()
        assert await b.acquire()
        assert await b.read_value() == "v"


# -- three processes, one history, the leader killed --------------------------------

CHILD_TTL = 1.5
PROCESS_DEADLINE = 30.0
"""Only reached on failure: starting three interpreters on a busy machine is slow."""
BEFORE_KILL = 2
AFTER_KILL = 2


def scheduled(run: RunRecord) -> datetime:
    assert run.trigger is not None
    return datetime.fromisoformat(run.trigger["scheduled_at"])


async def test_three_services_run_each_fire_once_and_the_lease_survives_a_kill(
    tmp_path: Path,
) -> None:
    db = tmp_path / "shared.db"
    data = tmp_path / "values"
    data.mkdir()
    # The file exists, with its tables, before the children race to create them.
    async with SQLiteHistory(db):
        pass
    logs = {f"child-{i}": tmp_path / f"child-{i}.log" for i in range(3)}
    children: dict[str, Process] = {}
    try:
        for holder, log in logs.items():
            with log.open("wb") as out:
                children[holder] = await anyio.open_process(
                    [sys.executable, str(CHILD), str(db), str(data), holder, str(CHILD_TTL)],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
        async with SQLiteHistory(db) as history, SQLiteLease(db, "cron:tick") as observer:

            async def runs() -> list[RunRecord]:
                found = await history.list_runs(limit=1000)
                return [r for r in found if r.status is RunStatus.SUCCEEDED]

            async def recorded(count: int, after: datetime | None = None) -> bool:
                return sum(after is None or scheduled(r) > after for r in await runs()) >= count

            await wait_until(lambda: recorded(BEFORE_KILL), PROCESS_DEADLINE)
            leader = await observer.leader()
            assert leader in children
            killed_at = max(scheduled(r) for r in await runs())
            children[leader].send_signal(signal.SIGKILL)
            with anyio.fail_after(DEADLINE):
                assert await children[leader].wait() == -signal.SIGKILL

            successors: list[str] = []

            async def taken_over() -> bool:
                holder = await observer.leader()
                successors.extend(h for h in [holder] if h is not None and h != leader)
                return bool(successors)

            await wait_until(taken_over, PROCESS_DEADLINE)
            new_leader = successors[0]
            # A few fires after the lease expired, from the new leader.
            after = killed_at + timedelta(seconds=CHILD_TTL)
            await wait_until(lambda: recorded(AFTER_KILL, after), PROCESS_DEADLINE)
        survivors = {h: c for h, c in children.items() if h != leader}
        for child in survivors.values():
            child.send_signal(signal.SIGTERM)
        with anyio.fail_after(DEADLINE):
            for holder, child in survivors.items():
                assert await child.wait() == 0, logs[holder].read_text()
        async with SQLiteHistory(db) as history:
            every = await history.list_runs(limit=1000)
    finally:
        with anyio.CancelScope(shield=True):
            for child in children.values():
                if child.returncode is None:
                    child.kill()
                    await child.wait()

    times = sorted(scheduled(r) for r in every)
    # No fire has two runs, and none is missing between the first and the last:
    # the new leader caught up on the fires the killed one could not make.
    assert [t for t, n in Counter(times).items() if n > 1] == []
    expected = [times[0] + timedelta(seconds=i) for i in range(len(times))]
    assert times == expected
    # Every run finished (one interrupted by the kill, if any, was resumed).
    assert {r.status for r in every} <= {RunStatus.SUCCEEDED}
    # Each run ran in one process: "ran" lines name distinct runs.
    ran = Counter(
        line.split()[1]
        for log in logs.values()
        for line in log.read_text().splitlines()
        if line.startswith("ran ")
    )
    assert [run_id for run_id, n in ran.items() if n > 1] == []
    # Both the killed leader and its successor fired.
    assert any(line.startswith("ran ") for line in logs[leader].read_text().splitlines())
    assert any(line.startswith("ran ") for line in logs[new_leader].read_text().splitlines())
