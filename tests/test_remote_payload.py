"""The remote-execution seam: payloads out, results back, without a real transport.

``run_payload`` is the worker's entry point; these tests call it in a worker thread of
this process (it starts its own event loop for async knots), so the transport is the
only thing missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.to_thread
import numpy as np
import pytest
from _dispatch_knots import (
    add,
    plain_add,
    plain_add_async,
    plain_fail,
    plain_fail_unimportable,
    plain_fail_unsendable,
)

from pirn_like import (
    ExceptionRecord,
    LocalDiskDataStore,
    RemoteKnotError,
    SerializationError,
    UntrustedPayloadError,
    content_hash,
)
from pirn_like.dispatchers._remote import (
    PICKLE_KEY_ENV,
    RemoteOptions,
    pack_call,
    run_payload,
    set_worker_pickle_key,
    unpack_result,
)
from pirn_like.protocols import KnotCall

pytestmark = pytest.mark.anyio

KEY = b"k" * 32
MiB = 1 << 20


@dataclass(frozen=True)
class Point:
    x: int
    y: float


def _call(target: Any, is_async: bool = False, **kwargs: Any) -> KnotCall:
    return KnotCall("run-1", "k", target, kwargs, is_async)  # type: ignore[arg-type]


async def _roundtrip(call: KnotCall, options: RemoteOptions) -> Any:
    payload = await pack_call(call, options)
    result = await anyio.to_thread.run_sync(run_payload, payload)
    return await unpack_result(result, options)


@pytest.fixture
def worker_key() -> Iterator[None]:
    set_worker_pickle_key(KEY)
    yield
    set_worker_pickle_key(None)


@pytest.mark.parametrize(
    "value",
    [
        {"nested": [1, 2.5, "three", None, True], "t": (1, (2, 3))},
        Point(1, 2.0),
        np.arange(12, dtype=np.int32).reshape(3, 4),
        b"\x00bytes",
    ],
)
async def test_values_round_trip_through_a_worker(value: object) -> None:
    def identity(v: object) -> object:
        return v

    back = await _roundtrip(_call(identity, v=value), RemoteOptions())
    if isinstance(value, np.ndarray):
        assert isinstance(back, np.ndarray)
        np.testing.assert_array_equal(back, value)
        assert back.dtype == value.dtype
    else:
        assert back == value


@pytest.mark.parametrize("value", [True, 0, -(2**70), 1.5, "", "é" * 5000, None])
async def test_scalars_come_back_with_their_exact_type(value: object) -> None:
    # Small ones ride in the frame's JSON header, the rest through the serializer.
    def identity(v: object) -> object:
        return v

    back = await _roundtrip(_call(identity, v=value), RemoteOptions())
    assert back == value
    assert type(back) is type(value)


async def test_code_pickled_by_value_is_sent_as_it_is_at_each_call() -> None:
    factor = [2]

    def scale(v: int) -> int:
        return v * factor[0]

    assert await _roundtrip(_call(scale, v=3), RemoteOptions()) == 6
    factor[0] = 5  # a cached copy of the code would still multiply by 2
    assert await _roundtrip(_call(scale, v=3), RemoteOptions()) == 15


async def test_async_code_runs_in_an_event_loop_on_the_worker() -> None:
    assert await _roundtrip(_call(plain_add_async, True, a=2, b=3), RemoteOptions()) == 5


async def test_large_values_travel_by_reference_through_the_data_store(tmp_path: Path) -> None:
    options = RemoteOptions(data_store_url=tmp_path.as_uri(), by_reference_over=64 * 1024)
    big = np.arange(MiB // 4, dtype=np.float64)  # 2 MiB

    def double(values: np.ndarray) -> np.ndarray:
        return values * 2

    payload = await pack_call(_call(double, values=big), options)
    assert len(payload) < 16 * 1024
    result = await anyio.to_thread.run_sync(run_payload, payload)
    assert len(result) < 1024
    back = await unpack_result(result, options)
    np.testing.assert_array_equal(back, big * 2)
    async with LocalDiskDataStore(tmp_path) as store:
        assert await store.contains(content_hash(big))
        assert await store.contains(content_hash(big * 2))


async def test_without_a_data_store_large_values_travel_inline() -> None:
    big = np.ones(MiB, dtype=np.uint8)
    payload = await pack_call(_call(np.sum, values=big), RemoteOptions(by_reference_over=1024))
    assert len(payload) > MiB


async def test_a_failure_is_rebuilt_with_the_remote_traceback_as_a_note() -> None:
    with pytest.raises(ValueError, match=r"^no good") as caught:
        await _roundtrip(_call(plain_fail, message="no good"), RemoteOptions())
    assert str(caught.value) == "no good"
    (note,) = caught.value.__notes__
    assert note.startswith("remote traceback (worker ")
    assert "in plain_fail" in note
    assert "raise ValueError(message)" in note
    record = ExceptionRecord.from_exception(caught.value)
    assert record.type == "builtins.ValueError"
    assert "remote traceback" in record.traceback


async def test_an_exception_class_not_importable_here_becomes_remote_knot_error() -> None:
    with pytest.raises(RemoteKnotError, match=r"^lost class") as caught:
        await _roundtrip(_call(plain_fail_unimportable, message="lost class"), RemoteOptions())
    remote_type = "_dispatch_knots.plain_fail_unimportable.<locals>.LocalOnlyError"
    assert caught.value.remote_type == remote_type
    assert "raise LocalOnlyError(message)" in caught.value.__notes__[0]
    assert ExceptionRecord.from_exception(caught.value).type == remote_type


async def test_an_exception_whose_arguments_cannot_travel_becomes_remote_knot_error() -> None:
    with pytest.raises(RemoteKnotError) as caught:
        await _roundtrip(_call(plain_fail_unsendable, message="odd args"), RemoteOptions())
    assert caught.value.remote_type == "builtins.RuntimeError"
    assert "odd args" in str(caught.value)


async def test_an_input_the_serializer_refuses_fails_before_sending() -> None:
    with pytest.raises(SerializationError, match="knot 'k': input 'a' cannot be sent"):
        await pack_call(_call(plain_add, a=object(), b=1), RemoteOptions())


async def test_signed_code_runs_on_a_worker_holding_the_key(worker_key: None) -> None:
    options = RemoteOptions(pickle_key=KEY)
    assert await _roundtrip(_call(plain_add, a=1, b=2), options) == 3


async def test_a_tampered_payload_is_refused_before_unpickling(worker_key: None) -> None:
    options = RemoteOptions(pickle_key=KEY)
    payload = bytearray(await pack_call(_call(plain_add, a=1, b=2), options))
    payload[-1] ^= 0xFF
    result = await anyio.to_thread.run_sync(run_payload, bytes(payload))
    with pytest.raises(UntrustedPayloadError, match="signature does not match"):
        await unpack_result(result, options)


async def test_a_keyed_worker_refuses_unsigned_payloads(worker_key: None) -> None:
    with pytest.raises(UntrustedPayloadError, match="accepts only signed payloads"):
        await _roundtrip(_call(plain_add, a=1, b=2), RemoteOptions())


async def test_a_worker_without_the_key_refuses_signed_payloads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(PICKLE_KEY_ENV, raising=False)
    with pytest.raises(UntrustedPayloadError, match=PICKLE_KEY_ENV):
        await _roundtrip(_call(plain_add, a=1, b=2), RemoteOptions(pickle_key=KEY))


async def test_a_worker_reads_its_key_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(PICKLE_KEY_ENV, KEY.hex())
    assert await _roundtrip(_call(plain_add, a=1, b=2), RemoteOptions(pickle_key=KEY)) == 3


async def test_code_by_reference_sends_an_import_path_and_no_pickle() -> None:
    options = RemoteOptions(code="reference")
    payload = await pack_call(_call(plain_add, a=4, b=5), options)
    assert b'"target":"_dispatch_knots:plain_add"' in payload
    assert b"cloudpickle" not in payload
    assert await _roundtrip(_call(plain_add, a=4, b=5), options) == 9


async def test_a_knot_function_travels_by_reference_too() -> None:
    target = add.fn
    options = RemoteOptions(code="reference")
    assert await _roundtrip(_call(target, a=1, b=2), options) == 3


async def test_code_that_has_no_import_path_cannot_travel_by_reference() -> None:
    def local_add(a: int, b: int) -> int:
        return a + b

    with pytest.raises(SerializationError, match=r"cannot travel by reference.*code='pickle'"):
        await pack_call(_call(local_add, a=1, b=2), RemoteOptions(code="reference"))


def test_options_refuse_a_store_workers_cannot_reach_and_a_short_key() -> None:
    with pytest.raises(ValueError, match="workers cannot read it"):
        RemoteOptions(data_store_url="memory://")
    with pytest.raises(ValueError, match="at least 16 bytes"):
        RemoteOptions(pickle_key=b"short")
    assert "pickle_key" not in repr(RemoteOptions(pickle_key=KEY))
