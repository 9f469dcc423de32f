"""One behavioural suite for every TapestryStore, plus what only persistent ones promise.

Each test runs over the stores its decorator names (all by default): in memory, in a
SQLite file, in a real PostgreSQL server and in a real ValKey server, each on asyncio
and trio. The persistent stores are shared through their database: a second store
on the same database (or another process) sees the knots the first one added.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
import uuid
from collections.abc import AsyncGenerator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from _backend_helpers import execute_sql, kinds, parametrize_kinds
from _fixtures_valkey import free_port
from _store_child import (
    HOLDS,
    Hold,
    add_ten,
    apply,
    is_positive,
    numbers,
    open_store,
    size_class,
    source,
    square,
    total,
    wait_for_release,
)

from pirn_like import (
    BackendError,
    ClosedResourceError,
    Knot,
    KnotConfig,
    Parameter,
    RetryPolicy,
    RunStatus,
    SchemaVersionError,
    SerializationError,
    Tapestry,
    WiringError,
)
from pirn_like._ids import KnotId
from pirn_like.backends._from_url import store_from_url
from pirn_like.backends._persistent_store import PersistentStore
from pirn_like.backends._postgres_store import PostgresStore
from pirn_like.backends._sqlite_store import SQLiteStore
from pirn_like.backends._valkey_store import ValKeyStore
from pirn_like.core._knot import Ref
from pirn_like.core._serialization import SafeSerializer
from pirn_like.nodes import Aggregator, Branch, Gate, Map, Reduce
from pirn_like.protocols import TapestryStore

pytestmark = pytest.mark.anyio

ALL = ("memory", "sqlite", "postgres", "valkey")
PERSISTENT = ("sqlite", "postgres", "valkey")
TESTS = Path(__file__).parent
PICKLE_KEY = b"conformance-suite-pickle-key"
WAIT = 20.0
"""Seconds any single wait in these tests may take before it fails."""


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Pair each store with both event loops (``[sqlite]``, ``[sqlite-trio]``)."""
    parametrize_kinds(metafunc, ALL)


@dataclass(frozen=True)
class Location:
    """Where one test's knots live: every store it builds shares the same database."""

    kind: str
    url: str
    key_prefix: str = ""

    def store(self, **options: Any) -> TapestryStore:
        return open_store(self.kind, self.url, self.key_prefix, **options)

    def persistent(self, **options: Any) -> PersistentStore:
        store = self.store(**options)
        assert isinstance(store, PersistentStore)
        return store


@pytest.fixture
def location(store_kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Location:
    match store_kind:
        case "memory":
            return Location("memory", "memory://")
        case "sqlite":
            return Location("sqlite", f"sqlite:///{tmp_path / 'knots.db'}")
        case "postgres":
            return Location("postgres", request.getfixturevalue("postgres_db_url"))
        case "valkey":
            url: str = request.getfixturevalue("valkey_url")
            return Location("valkey", url, request.getfixturevalue("valkey_key_prefix"))
        case _:
            raise AssertionError(store_kind)


@asynccontextmanager
async def opened(store: TapestryStore) -> AsyncGenerator[TapestryStore]:
    """``store``, opened if it is a resource (the in-memory store is not)."""
    async with AsyncExitStack() as stack:
        if isinstance(store, PersistentStore):
            await stack.enter_async_context(store)
        yield store


def wiring(knot: Knot) -> dict[str, str]:
    return {name: p.knot_id if isinstance(p, Ref) else p.id for name, p in knot.parents.items()}


def build_pipeline() -> None:
    """Knots of every built-in shape, registered into the current tapestry."""
    n = Parameter("n", int, default=4)
    nums = numbers(
        n=n,
        _config=KnotConfig(
            id="nums",
            tags=frozenset({"fetch", "slow"}),
            retry=RetryPolicy(attempts=2, retry_on=(OSError,)),
        ),
    )
    squares = Map(over=nums, each=square, _config=KnotConfig(id="squares"))
    summed = Reduce(of=squares, combine=sum, _config=KnotConfig(id="summed"))
    positive = Gate(input=summed, predicate=is_positive, _config=KnotConfig(id="positive"))
    size = Branch(
        input=positive,
        selector=size_class,
        branches=["big", "small"],
        _config=KnotConfig(id="size"),
    )
    plus = add_ten(x=positive, _config=KnotConfig(id="plus"))
    Aggregator(big=size["big"], plus=plus, combine=total, _config=KnotConfig(id="agg"))


# -- every store ----------------------------------------------------------------------


async def test_add_get_knots_and_version(location: Location) -> None:
    async with opened(location.store()) as store:
        start = store.version
        a = source(value=1, _config=KnotConfig(id="a"))
        b = add_ten(x=a, _config=KnotConfig(id="b"))
        store.add(a)
        assert store.version == start + 1
        store.add(b)
        assert store.version == start + 2
        assert store.get("a") is a
        assert store.get("b") is b
        assert store.get("missing") is None
        assert dict(store.knots()) == {"a": a, "b": b}
        store.add(a)  # the same object again: nothing changes
        assert store.version == start + 2


async def test_duplicate_id_is_a_wiring_error(location: Location) -> None:
    async with opened(location.store()) as store:
        first = source(value=1, _config=KnotConfig(id="a"))
        store.add(first)
        with pytest.raises(WiringError, match="duplicate knot id 'a'"):
            store.add(source(value=2, _config=KnotConfig(id="a")))
        assert store.get("a") is first


async def test_listeners_hear_each_added_knot_until_they_unsubscribe(location: Location) -> None:
    async with opened(location.store()) as store:
        heard: list[Knot] = []
        unsubscribe = store.subscribe(heard.append)
        a = source(value=1, _config=KnotConfig(id="a"))
        b = add_ten(x=a, _config=KnotConfig(id="b"))
        store.add(a)
        store.add(b)
        assert heard == [a, b]
        unsubscribe()
        store.add(source(value=3, _config=KnotConfig(id="c")))
        assert heard == [a, b]


# -- persistent stores ------------------------------------------------------------------


@kinds(*PERSISTENT)
async def test_second_store_sees_added_knots_and_tells_its_listeners(location: Location) -> None:
    first, second = location.persistent(), location.persistent()
    async with first, second:
        heard: list[Knot] = []
        arrived = anyio.Event()

        def on_knot(knot: Knot) -> None:
            heard.append(knot)
            if knot.id == "c":
                arrived.set()

        second.subscribe(on_knot)
        with Tapestry(store=first):
            a = source(value=1, _config=KnotConfig(id="a"))
            add_ten(x=a, _config=KnotConfig(id="b"))
        await first.sync()
        await second.sync()
        assert sorted(second.knots()) == ["a", "b"]
        assert [k.id for k in heard] == ["a", "b"]
        b = second.get("b")
        assert b is not None
        assert b is not first.get("b")
        assert wiring(b) == {"x": "a"}
        assert b.config_hash == first.knots()[KnotId("b")].config_hash

        # Without sync(): the second store notices the write by itself.
        first.add(source(value=3, _config=KnotConfig(id="c")))
        await first.sync()
        with anyio.fail_after(WAIT):
            await arrived.wait()
        assert second.get("c") is not None


@kinds(*PERSISTENT)
async def test_reopened_store_gives_back_the_same_knots_and_outputs(location: Location) -> None:
    first = location.persistent()
    with Tapestry(store=first):
        build_pipeline()  # before the store is open: written when it opens
    async with first, Tapestry(store=first) as tapestry:
        expected = await tapestry.run()
    assert expected.status is RunStatus.SUCCEEDED
    assert expected.outputs["agg"] == 30 + 40
    original = first.knots()

    second = location.persistent()
    async with second:
        restored = second.knots()
        assert sorted(restored) == sorted(original)
        for knot_id, knot in original.items():
            again = restored[knot_id]
            assert type(again) is type(knot)
            assert again.config == knot.config
            assert again.config_hash == knot.config_hash
            assert wiring(again) == wiring(knot)
        assert second.unresolved() == {}
        async with Tapestry(store=second) as tapestry:
            result = await tapestry.run()
    assert result.status is RunStatus.SUCCEEDED
    assert result.outputs == expected.outputs


@kinds(*PERSISTENT)
async def test_rewiring_an_equal_knot_is_a_no_op_and_a_changed_one_replaces_it(
    location: Location,
) -> None:
    async with location.persistent() as first:
        first.add(source(value=1, _config=KnotConfig(id="a")))

    watcher = location.persistent()
    heard: list[Knot] = []
    async with watcher:
        watcher.subscribe(heard.append)
        async with location.persistent() as rerun:  # the same wiring script, run again
            again = source(value=1, _config=KnotConfig(id="a"))
            rerun.add(again)
            assert rerun.get("a") is again
            with pytest.raises(WiringError, match="duplicate knot id 'a'"):
                rerun.add(source(value=1, _config=KnotConfig(id="a")))
        await watcher.sync()
        assert heard == []  # nothing was written

        async with location.persistent() as changed:
            changed.add(source(value=2, _config=KnotConfig(id="a")))
        await watcher.sync()
        assert [k.constants for k in heard] == [{"value": 2}]
        assert watcher.knots()[KnotId("a")].constants == {"value": 2}


@kinds(*PERSISTENT)
async def test_lambda_needs_a_serializer_that_pickles(location: Location) -> None:
    plain = location.persistent()
    async with plain:
        with pytest.raises(SerializationError, match=r"knot 'f', constant 'fn'.*<lambda>"):
            apply(
                fn=lambda v: v * 3, x=2, _config=KnotConfig(id="f"), tapestry=Tapestry(store=plain)
            )
        assert plain.get("f") is None

    pickling = location.persistent(serializer=SafeSerializer(pickle_key=PICKLE_KEY))
    async with pickling:
        apply(
            fn=lambda v: v * 3, x=2, _config=KnotConfig(id="f"), tapestry=Tapestry(store=pickling)
        )

    again = location.persistent(serializer=SafeSerializer(pickle_key=PICKLE_KEY))
    async with again, Tapestry(store=again) as tapestry:
        assert (await tapestry.run()).outputs["f"] == 6
    async with location.persistent() as keyless:  # may not unpickle: reported, not loaded
        assert keyless.get("f") is None
        assert "pickle" in keyless.unresolved()[KnotId("f")]


@kinds(*PERSISTENT)
async def test_knot_of_an_unimported_module_is_reported_and_the_rest_load(
    location: Location,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    name = f"_store_extra_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text(
        "from pirn_like import knot\n\n\n@knot\ndef triple(x: int) -> int:\n    return 3 * x\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module(name)
    async with location.persistent() as first:
        with Tapestry(store=first):
            module.triple(
                x=source(value=2, _config=KnotConfig(id="src")), _config=KnotConfig(id="t")
            )
    monkeypatch.delitem(sys.modules, name)

    async with location.persistent() as second:
        assert sorted(second.knots()) == ["src"]
        reason = second.unresolved()[KnotId("t")]
        assert f"module {name!r}, which is not imported" in reason
        assert any("'t'" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")

    async with location.persistent(import_modules=[name]) as allowed:
        assert sorted(allowed.knots()) == ["src", "t"]
        async with Tapestry(store=allowed) as tapestry:
            assert (await tapestry.run()).outputs["t"] == 6


@kinds(*PERSISTENT)
async def test_run_takes_in_a_knot_another_process_adds_meanwhile(location: Location) -> None:
    hold_name = f"hold-{uuid.uuid4().hex}"
    hold = HOLDS[hold_name] = Hold()
    try:
        store = location.persistent()
        async with store:

            def release_when_late_arrives(knot: Knot) -> None:
                if knot.id == "late":
                    hold.release.set()

            store.subscribe(release_when_late_arrives)
            async with Tapestry(store=store) as tapestry:
                src = source(value=1, _config=KnotConfig(id="src"))
                wait_for_release(x=src, hold=hold_name, _config=KnotConfig(id="wait"))
                results = []

                async def run() -> None:
                    results.append(await tapestry.run(extensible=True))

                with anyio.fail_after(WAIT * 2):
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(run)
                        await hold.started.wait()  # the run is in progress
                        await add_in_child_process(location, "late")
    finally:
        del HOLDS[hold_name]
    (result,) = results
    assert result.status is RunStatus.SUCCEEDED
    assert result.outputs["wait"] == 1
    assert result.outputs["late"] == 11


async def add_in_child_process(location: Location, knot_id: str) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent)])}
    done = await anyio.run_process(
        [
            sys.executable,
            "-c",
            "import _store_child; _store_child.main()",
            location.kind,
            location.url,
            location.key_prefix,
            knot_id,
        ],
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")


@kinds(*PERSISTENT)
async def test_store_is_used_only_while_open(location: Location) -> None:
    store = location.persistent()
    with pytest.raises(ClosedResourceError, match="async with"):
        await store.sync()
    async with store:
        async with store:  # entered twice (a tapestry sharing it): open until the last exit
            pass
        await store.sync()
    with pytest.raises(ClosedResourceError):
        await store.sync()
    with pytest.raises(ClosedResourceError, match="would never be written"):
        store.add(source(value=1, _config=KnotConfig(id="a")))
    with pytest.raises(ClosedResourceError, match="was closed"):
        async with store:
            pass


@kinds(*PERSISTENT)
async def test_newer_schema_is_refused(location: Location) -> None:
    async with location.persistent():
        pass
    await anyio.to_thread.run_sync(set_schema_version, location, 99)
    with pytest.raises(SchemaVersionError, match="schema version 99"):
        async with location.persistent():
            pass


def set_schema_version(location: Location, version: int) -> None:
    """Write ``version`` where the store keeps its schema version, as a newer pirn_like
    would (blocking; run in a worker thread)."""
    if location.kind == "valkey":
        asyncio.run(_set_valkey_schema(location.url, location.key_prefix, version))
    else:
        execute_sql(location.url, f"UPDATE pirn_like_store_schema SET version = {version}")


async def _set_valkey_schema(url: str, prefix: str, version: int) -> None:
    import glide

    host, port = url.removeprefix("valkey://").removesuffix("/0").split(":")
    config = glide.GlideClientConfiguration([glide.NodeAddress(host, int(port))])
    client = await glide.GlideClient.create(config)
    try:
        await client.set(f"{prefix}schema", str(version))
    finally:
        await client.close()


@kinds("sqlite", "postgres", "valkey")
async def test_unreachable_database_is_a_backend_error_naming_the_url(
    store_kind: str, tmp_path: Path
) -> None:
    port = free_port()
    url = {
        "sqlite": f"sqlite:///{tmp_path / 'no-such-dir' / 'knots.db'}",
        "postgres": f"postgresql://user:s3cret@127.0.0.1:{port}/knots",
        "valkey": f"valkey://user:s3cret@127.0.0.1:{port}/0",
    }[store_kind]
    store = store_from_url(url)
    assert isinstance(store, PersistentStore)
    with pytest.raises(BackendError, match="could not open the store") as caught:
        async with store:
            pass
    message = str(caught.value)
    assert "s3cret" not in message
    assert ("no-such-dir" if store_kind == "sqlite" else f"user:***@127.0.0.1:{port}") in message


def test_from_url_builds_the_store_its_scheme_names(tmp_path: Path) -> None:
    built: Mapping[str, type[PersistentStore]] = {
        f"sqlite:///{tmp_path / 'k.db'}": SQLiteStore,
        "postgresql://u:p@db.example:5432/knots": PostgresStore,
        "postgres://db.example/knots": PostgresStore,
        "valkey://cache.example:6380/2": ValKeyStore,
        "redis://cache.example/0": ValKeyStore,
    }
    for url, cls in built.items():
        store = store_from_url(url)
        assert type(store) is cls
        assert isinstance(store, PersistentStore)
        assert "u:p@" not in store.url
    with pytest.raises(ValueError, match="names no database file"):
        SQLiteStore.from_url("sqlite://")
    with pytest.raises(ValueError, match="not a ValKey URL"):
        ValKeyStore.from_url("valkey://cache.example/zero")
