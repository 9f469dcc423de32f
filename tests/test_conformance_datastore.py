"""One behavioural suite for every DataStore, plus what only one backend promises.

Each conformance test runs over the stores its decorator names (all by default):
in memory, on local disk, in a real ValKey server and in a real S3 server (moto),
each on asyncio and, where the driver allows, trio.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import anyio
import numpy as np
import pandas as pd
import pydantic
import pytest
from _backend_helpers import kinds, parametrize_kinds
from _fixtures_s3 import S3_REGION
from _fixtures_valkey import free_port
from anyio.streams.buffered import BufferedByteReceiveStream

from pirn_like import (
    BackendError,
    ClosedResourceError,
    KnotConfig,
    Outcome,
    Parameter,
    RunRequest,
    SerializationError,
    Tapestry,
    UntrustedPayloadError,
    content_hash,
    knot,
)
from pirn_like._ids import ContentHash
from pirn_like.backends import InMemoryDataStore
from pirn_like.backends._disk_data import LocalDiskDataStore
from pirn_like.backends._s3_data import S3DataStore
from pirn_like.backends._valkey_data import ValKeyDataStore
from pirn_like.core._serialization import SafeSerializer
from pirn_like.protocols import DataStore, Serializer

pytestmark = pytest.mark.anyio

ALL = ("memory", "disk", "valkey", "s3")
PERSISTENT = ("disk", "valkey", "s3")
SERVERS = ("valkey", "s3")
_ASYNCIO_ONLY = {"s3"}  # aiobotocore runs on asyncio only


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Pair each store with the event loops it runs on (``[disk]``, ``[disk-trio]``)."""
    parametrize_kinds(metafunc, ALL, asyncio_only=_ASYNCIO_ONLY)


@dataclass(frozen=True)
class Location:
    """Where one test's values live: every store it builds reads the same values."""

    build: Callable[[Serializer | None], DataStore]
    url: str
    from_url: Callable[[str], DataStore]

    def new(self, serializer: Serializer | None = None) -> DataStore:
        return self.build(serializer)


@pytest.fixture
def location(store_kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Location:
    match store_kind:
        case "memory":
            shared = InMemoryDataStore()
            return Location(lambda _: shared, "memory://", lambda _: shared)
        case "disk":
            root = tmp_path / "values"
            return Location(
                lambda s: LocalDiskDataStore(root, serializer=s),
                root.as_uri(),
                LocalDiskDataStore.from_url,
            )
        case "valkey":
            host, port = request.getfixturevalue("valkey_server")
            prefix: str = request.getfixturevalue("valkey_key_prefix")
            return Location(
                lambda s: ValKeyDataStore(host, port, key_prefix=prefix, serializer=s),
                f"redis://{host}:{port}/0",
                lambda url: ValKeyDataStore.from_url(url, key_prefix=prefix),
            )
        case "s3":
            endpoint: str = request.getfixturevalue("s3_endpoint")
            bucket: str = request.getfixturevalue("s3_bucket")
            return Location(
                lambda s: S3DataStore(
                    bucket, "values", endpoint_url=endpoint, region=S3_REGION, serializer=s
                ),
                f"s3://{bucket}/values?endpoint={endpoint}&region={S3_REGION}",
                S3DataStore.from_url,
            )
        case _:
            raise AssertionError(store_kind)


@pytest.fixture
async def data_store(location: Location) -> AsyncIterator[DataStore]:
    async with location.new() as store:
        yield store


class Point(pydantic.BaseModel):
    x: int
    label: str
    tags: tuple[str, ...] = ()


class Opaque:
    """A value no safe format handles (a plain class with state)."""

    def __init__(self, payload: int) -> None:
        self.payload = payload

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Opaque) and other.payload == self.payload

    def __hash__(self) -> int:
        return hash(self.payload)


VALUES: dict[str, Callable[[], object]] = {
    "int": lambda: 42,
    "big-int": lambda: -(2**100),
    "nested": lambda: {"a": [1, 2.5, None, True], "b": {"c": ("x", b"y")}, "d": {1, 2}},
    "numpy": lambda: np.arange(12, dtype=np.int32).reshape(3, 4),
    "dataframe": lambda: pd.DataFrame({"n": [1, 2, 3], "s": ["a", "b", None]}),
    "pydantic": lambda: Point(x=1, label="p", tags=("t",)),
}


def assert_same(got: object, expected: object) -> None:
    assert type(got) is type(expected)
    if isinstance(expected, np.ndarray):
        assert isinstance(got, np.ndarray)
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)
    elif isinstance(expected, pd.DataFrame):
        assert isinstance(got, pd.DataFrame)
        pd.testing.assert_frame_equal(got, expected)
    else:
        assert got == expected


def hash_of(value: object) -> ContentHash:
    return ContentHash(content_hash(value))


# -- the contract -------------------------------------------------------------------


@pytest.mark.parametrize("name", VALUES)
async def test_put_then_get_returns_an_equal_value(data_store: DataStore, name: str) -> None:
    value = VALUES[name]()
    h = hash_of(value)
    await data_store.put(h, value)
    assert await data_store.contains(h)
    assert_same(await data_store.get(h), value)


async def test_get_of_missing_hash_raises_key_error_naming_it(data_store: DataStore) -> None:
    h = hash_of("never stored")
    assert not await data_store.contains(h)
    with pytest.raises(KeyError, match=h):
        await data_store.get(h)


async def test_delete_reports_whether_the_value_was_kept(data_store: DataStore) -> None:
    h = hash_of([1, 2, 3])
    assert await data_store.delete(h) is False
    await data_store.put(h, [1, 2, 3])
    assert await data_store.delete(h) is True
    assert not await data_store.contains(h)
    assert await data_store.delete(h) is False
    with pytest.raises(KeyError, match=h):
        await data_store.get(h)


async def test_putting_a_hash_twice_keeps_one_value(data_store: DataStore) -> None:
    value = {"k": [1, 2]}
    h = hash_of(value)
    await data_store.put(h, value)
    await data_store.put(h, value)
    assert_same(await data_store.get(h), value)
    assert await data_store.delete(h) is True
    assert not await data_store.contains(h)


async def test_values_under_different_hashes_are_independent(data_store: DataStore) -> None:
    a, b = "first", "second"
    await data_store.put(hash_of(a), a)
    await data_store.put(hash_of(b), b)
    await data_store.delete(hash_of(a))
    assert await data_store.get(hash_of(b)) == b


async def test_tapestry_run_keeps_every_ok_output(location: Location) -> None:
    @knot
    def numbers(n: int) -> np.ndarray:
        return np.arange(n)

    @knot
    async def frame(values: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame({"v": values, "sq": values**2})

    @knot
    def summary(df: pd.DataFrame) -> dict[str, int]:
        return {"rows": len(df), "total": int(df["sq"].to_numpy().sum())}

    with Tapestry(data_store=location.new()) as tapestry:
        n = Parameter("n", int)
        nums = numbers(n=n, _config=KnotConfig(id="numbers"))
        df = frame(values=nums, _config=KnotConfig(id="frame"))
        summary(df=df, _config=KnotConfig(id="summary"))
    try:
        result = await tapestry.run(RunRequest(parameters={"n": 5}))
    finally:
        await tapestry.aclose()
    assert result.outputs["summary"] == {"rows": 5, "total": 30}
    kept = [rec for rec in result.lineage if rec.outcome is Outcome.OK]
    assert {rec.knot_id for rec in kept} >= {"numbers", "frame", "summary"}
    async with location.new() as reader:
        for rec in kept:
            assert rec.output_hash is not None
            assert_same(await reader.get(rec.output_hash), result.outputs[rec.knot_id])


# -- persistent stores ----------------------------------------------------------------


@kinds(*PERSISTENT)
async def test_values_survive_close_and_reopen(location: Location) -> None:
    value = VALUES["dataframe"]()
    h = hash_of(value)
    async with location.new() as writer:
        await writer.put(h, value)
    async with location.new() as reader:
        assert_same(await reader.get(h), value)


@kinds(*PERSISTENT)
async def test_from_url_opens_the_same_values(location: Location) -> None:
    value = VALUES["nested"]()
    h = hash_of(value)
    async with location.new() as writer:
        await writer.put(h, value)
    async with location.from_url(location.url) as reader:
        assert_same(await reader.get(h), value)


@kinds(*PERSISTENT)
@pytest.mark.parametrize(
    "bad",
    [
        pytest.param("sha256:" + "0" * 63, id="short"),
        pytest.param("sha256:" + "A" * 64, id="uppercase"),
        pytest.param("sha256:" + "0" * 64 + "/..", id="trailing-path"),
        pytest.param("md5:" + "0" * 32, id="other-algorithm"),
        pytest.param("../../etc/passwd", id="path"),
        pytest.param("", id="empty"),
    ],
)
async def test_malformed_hash_is_refused_naming_it(data_store: DataStore, bad: str) -> None:
    h = ContentHash(bad)
    for call in (
        lambda: data_store.put(h, 1),
        lambda: data_store.get(h),
        lambda: data_store.contains(h),
        lambda: data_store.delete(h),
    ):
        with pytest.raises(ValueError, match="is not a content hash") as info:
            await call()
        assert repr(bad) in str(info.value)


@kinds(*PERSISTENT)
async def test_value_no_safe_format_handles_is_refused_at_put(data_store: DataStore) -> None:
    h = hash_of("opaque")
    with pytest.raises(SerializationError, match="Opaque"):
        await data_store.put(h, Opaque(1))
    assert not await data_store.contains(h)


@kinds(*PERSISTENT)
async def test_signed_pickle_round_trips_only_with_the_same_key(location: Location) -> None:
    h = hash_of("opaque")
    async with location.new(SafeSerializer(pickle_key=b"first-key-16-bytes!")) as store:
        await store.put(h, Opaque(7))
        assert await store.get(h) == Opaque(7)
    for reader in (SafeSerializer(pickle_key=b"other-key-16-bytes!"), SafeSerializer()):
        async with location.new(reader) as store:
            assert await store.contains(h)
            with pytest.raises(UntrustedPayloadError):
                await store.get(h)


@kinds(*PERSISTENT)
async def test_use_before_open_and_after_close_is_refused(location: Location) -> None:
    store = location.new()
    h = hash_of(1)
    with pytest.raises(ClosedResourceError, match="is not open"):
        await store.put(h, 1)
    async with store:
        await store.put(h, 1)
    with pytest.raises(ClosedResourceError, match="was closed"):
        await store.get(h)
    with pytest.raises(ClosedResourceError, match="create a new one"):
        async with store:
            pass
    async with location.new() as again:
        assert await again.get(h) == 1


@kinds(*PERSISTENT)
async def test_nested_opens_close_with_the_last(location: Location) -> None:
    """A tapestry's concurrent runs may each open the store it was given."""
    store = location.new()
    h = hash_of(2)
    async with store:
        async with store:
            await store.put(h, 2)
        assert await store.get(h) == 2
    with pytest.raises(ClosedResourceError):
        await store.contains(h)


@kinds(*SERVERS)
async def test_unreachable_server_is_a_backend_error_naming_the_url(store_kind: str) -> None:
    port = free_port()
    if store_kind == "valkey":
        store: DataStore = ValKeyDataStore("127.0.0.1", port, password="hunter2")
        shown = f"valkey://:***@127.0.0.1:{port}/0"
    else:
        store = S3DataStore(
            "bucket",
            endpoint_url=f"http://127.0.0.1:{port}",
            region=S3_REGION,
            aws_access_key_id="someone",
            aws_secret_access_key="hunter2",
        )
        shown = f"s3://bucket/?endpoint=http://127.0.0.1:{port}&region={S3_REGION}"
    with anyio.fail_after(60), pytest.raises(BackendError) as info:
        async with store:
            pass
    assert shown in str(info.value)
    assert "hunter2" not in str(info.value)
    assert info.value.__cause__ is not None


# -- local disk -----------------------------------------------------------------------


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


async def test_disk_lays_values_out_by_hash_prefix(tmp_path: Path) -> None:
    value = [1, 2, 3]
    h = hash_of(value)
    hex_ = h.removeprefix("sha256:")
    async with LocalDiskDataStore(tmp_path) as store:
        await store.put(h, value)
    assert (tmp_path / hex_[:2] / hex_[2:4] / hex_).is_file()
    assert [p.name for p in files_under(tmp_path)] == [hex_]  # no temp file left


async def test_disk_put_of_a_kept_hash_does_not_rewrite_the_file(tmp_path: Path) -> None:
    h = hash_of("kept")
    async with LocalDiskDataStore(tmp_path) as store:
        await store.put(h, "kept")
        (path,) = files_under(tmp_path)
        before = path.stat()
        await store.put(h, "kept")
        after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


async def test_disk_ignores_a_temp_file_left_by_a_crash(tmp_path: Path) -> None:
    value = {"v": list(range(100))}
    h = hash_of(value)
    hex_ = h.removeprefix("sha256:")
    directory = tmp_path / hex_[:2] / hex_[2:4]
    directory.mkdir(parents=True)
    (directory / f".{hex_}.crashed.tmp").write_bytes(b"\x00partial")
    async with LocalDiskDataStore(tmp_path) as store:
        assert not await store.contains(h)
        with pytest.raises(KeyError, match=h):
            await store.get(h)
        await store.put(h, value)
        assert await store.get(h) == value


_WRITER = """
import sys, anyio
from pirn_like.backends._disk_data import LocalDiskDataStore
from pirn_like.core._hashing import content_hash

async def main() -> None:
    async with LocalDiskDataStore(sys.argv[1]) as store:
        i = 0
        while True:
            value = bytes([i % 251]) * 4_000_000
            await store.put(content_hash(value), value)
            print(i, flush=True)
            i += 1

anyio.run(main)
"""


async def test_disk_writer_killed_mid_write_leaves_values_absent_or_whole(
    tmp_path: Path,
) -> None:
    def value(i: int) -> bytes:
        return bytes([i % 251]) * 4_000_000

    process = await anyio.open_process([sys.executable, "-c", _WRITER, str(tmp_path)])
    done = -1
    try:
        with anyio.fail_after(60):
            assert process.stdout is not None
            lines = BufferedByteReceiveStream(process.stdout)
            while done < 3:
                done = int(await lines.receive_until(b"\n", 100))
    finally:
        process.send_signal(signal.SIGKILL)  # no chance to clean up: as a power cut would
        with anyio.fail_after(10):
            await process.wait()
        await process.aclose()
    async with LocalDiskDataStore(tmp_path) as store:
        for i in range(done + 10):
            h = hash_of(value(i))
            # Past ``done``, the write in flight may have finished before the kill.
            if i <= done or await store.contains(h):
                assert await store.get(h) == value(i)
    stray = [p.name for p in files_under(tmp_path) if p.name.startswith(".")]
    assert all(name.endswith(".tmp") for name in stray)


async def test_disk_from_url_needs_an_absolute_file_url(tmp_path: Path) -> None:
    assert LocalDiskDataStore.from_url(tmp_path.as_uri()).root == tmp_path
    for bad in ("file://relative/dir", "file:relative", "s3://bucket/x"):
        with pytest.raises(ValueError, match="file:///absolute/dir"):
            LocalDiskDataStore.from_url(bad)


async def test_disk_root_that_is_a_file_fails_to_open_naming_it(tmp_path: Path) -> None:
    root = tmp_path / "a-file"
    root.write_text("not a directory")
    with pytest.raises(BackendError, match=str(root)):
        async with LocalDiskDataStore(root):
            pass


# -- ValKey ---------------------------------------------------------------------------


async def test_valkey_url_forms_and_redaction() -> None:
    store = ValKeyDataStore.from_url("redis://user:s3cret@cache.local:7000/3")
    assert store.url == "valkey://user:***@cache.local:7000/3"
    assert ValKeyDataStore.from_url("valkeys://h").url == "valkeys://h:6379/0"
    for bad in ("valkey://h/x", "http://h:1/0", "valkey://h:1/0?ttl=3"):
        with pytest.raises(ValueError, match="valkey://"):
            ValKeyDataStore.from_url(bad)


async def test_valkey_ttl_is_set_on_put_and_renewed_by_a_repeat_put(
    valkey_server: tuple[str, int], valkey_key_prefix: str
) -> None:
    from glide import GlideClient, GlideClientConfiguration, NodeAddress

    host, port = valkey_server
    h = hash_of("short-lived")
    key = valkey_key_prefix + h.removeprefix("sha256:")
    client = await GlideClient.create(GlideClientConfiguration([NodeAddress(host, port)]))
    try:
        async with ValKeyDataStore(host, port, key_prefix=valkey_key_prefix, ttl=60) as store:
            await store.put(h, "short-lived")
            assert 0 < await client.pttl(key) <= 60_000
            await client.pexpire(key, 5_000)
            await store.put(h, "short-lived")
            assert 5_000 < await client.pttl(key) <= 60_000
        async with ValKeyDataStore(host, port, key_prefix=valkey_key_prefix) as store:
            await store.put(hash_of(1), 1)
            assert await client.pttl(valkey_key_prefix + hash_of(1).removeprefix("sha256:")) == -1
    finally:
        await client.close()


# -- S3 -------------------------------------------------------------------------------


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_s3_objects_live_under_the_prefix(s3_endpoint: str, s3_bucket: str) -> None:
    from aiobotocore.session import get_session

    h = hash_of("object")
    async with S3DataStore(
        s3_bucket, "/runs/values/", endpoint_url=s3_endpoint, region=S3_REGION
    ) as store:
        await store.put(h, "object")
    async with get_session().create_client(
        "s3", endpoint_url=s3_endpoint, region_name=S3_REGION
    ) as client:
        listing: Any = await cast(Any, client).list_objects_v2(Bucket=s3_bucket)
    assert [o["Key"] for o in listing["Contents"]] == [f"runs/values/{h.removeprefix('sha256:')}"]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_s3_missing_bucket_fails_to_open(s3_endpoint: str) -> None:
    store = S3DataStore("no-such-bucket", endpoint_url=s3_endpoint, region=S3_REGION)
    with pytest.raises(BackendError, match="s3://no-such-bucket/"):
        async with store:
            pass


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_s3_on_trio_is_refused_clearly(s3_endpoint: str, s3_bucket: str) -> None:
    with pytest.raises(BackendError, match="asyncio only"):
        async with S3DataStore(s3_bucket, endpoint_url=s3_endpoint, region=S3_REGION):
            pass


async def test_s3_url_forms_never_show_credentials() -> None:
    store = S3DataStore.from_url("s3://bkt/a/b?region=eu-west-1", aws_secret_access_key="x")
    assert store.url == "s3://bkt/a/b?region=eu-west-1"
    for bad in ("s3://key:secret@bkt/p", "s3://bkt/p?token=abc", "gs://bkt/p"):
        with pytest.raises(ValueError, match="s3://bucket") as info:
            S3DataStore.from_url(bad)
        assert "key:secret" not in str(info.value)
