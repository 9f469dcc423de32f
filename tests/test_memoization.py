"""Memoization: KnotConfig(cache=...), cache keys, and explaining misses."""

from __future__ import annotations

import importlib
import linecache
import shutil
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pirn_like import (
    CachePolicy,
    InMemoryDataStore,
    KnotConfig,
    Parameter,
    RunRequest,
    Tapestry,
    WiringError,
    content_hash,
    knot,
)
from pirn_like.core._plan import cache_spec

pytestmark = pytest.mark.anyio

calls: Counter[str] = Counter()


@knot
async def scale(x: int, factor: int) -> int:
    calls["scale"] += 1
    return x * factor


@knot
async def flaky(x: int, fail: bool) -> int:
    calls["flaky"] += 1
    if fail:
        raise RuntimeError("boom")
    return x


@knot
async def measure(data: Any) -> str:
    calls["measure"] += 1
    return repr(type(data))


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    calls.clear()


def scaled(cache: CachePolicy | bool | None, factor: int = 2) -> Tapestry:
    t = Tapestry(data_store=InMemoryDataStore())
    with t:
        scale(x=Parameter("x", int), factor=factor, _config=KnotConfig(id="s", cache=cache))
    return t


async def test_a_second_run_replays_the_output_and_says_from_which_run() -> None:
    t = scaled(True)
    first = await t.run(RunRequest(parameters={"x": 4}))
    second = await t.run(RunRequest(parameters={"x": 4}))
    assert calls["scale"] == 1
    assert second.outputs["s"] == 8
    hit = second.lineage_for("s")
    assert hit.cached_from == first.run_id
    assert hit.attempts == 0
    assert hit.cache_key == first.lineage_for("s").cache_key is not None
    assert hit.output_hash == first.lineage_for("s").output_hash
    assert await t.history.explain_miss(second.run_id, "s") is None
    # A third run replays from the original execution, not from the replay.
    third = await t.run(RunRequest(parameters={"x": 4}))
    assert third.lineage_for("s").cached_from == first.run_id


async def test_cache_is_off_by_default() -> None:
    t = scaled(None)
    await t.run(RunRequest(parameters={"x": 4}))
    second = await t.run(RunRequest(parameters={"x": 4}))
    assert calls["scale"] == 2
    rec = second.lineage_for("s")
    assert rec.cache_key is None
    assert rec.cached_from is None
    miss = await t.history.explain_miss(second.run_id, "s")
    assert miss is not None
    assert miss.reason == "not_cached"


async def test_a_changed_input_is_a_miss_that_names_the_input() -> None:
    t = scaled(True)
    first = await t.run(RunRequest(parameters={"x": 4}))
    second = await t.run(RunRequest(parameters={"x": 5}))
    assert calls["scale"] == 2
    miss = await t.history.explain_miss(second.run_id, "s")
    assert miss is not None
    assert miss.changed == ("input:x",)
    assert miss.previous is not None
    assert miss.previous.run_id == first.run_id
    assert "input:x" in miss.message


async def test_a_changed_constant_is_named() -> None:
    history_source = scaled(True, factor=2)
    await history_source.run(RunRequest(parameters={"x": 4}))
    t = Tapestry(history=history_source.history, data_store=history_source.data_store)
    with t:
        scale(x=Parameter("x", int), factor=3, _config=KnotConfig(id="s", cache=True))
    second = await t.run(RunRequest(parameters={"x": 4}))
    assert calls["scale"] == 2
    miss = await t.history.explain_miss(second.run_id, "s")
    assert miss is not None
    assert miss.changed == ("constant:factor",)


async def test_bumping_the_version_invalidates() -> None:
    first = scaled(CachePolicy(version="1"))
    await first.run(RunRequest(parameters={"x": 4}))
    t = Tapestry(history=first.history, data_store=first.data_store)
    with t:
        scale(
            x=Parameter("x", int),
            factor=2,
            _config=KnotConfig(id="s", cache=CachePolicy(version="2")),
        )
    second = await t.run(RunRequest(parameters={"x": 4}))
    assert calls["scale"] == 2
    miss = await t.history.explain_miss(second.run_id, "s")
    assert miss is not None
    assert miss.changed == ("version",)


async def test_an_expired_entry_is_not_replayed() -> None:
    t = scaled(CachePolicy(ttl=60))
    first = await t.run(RunRequest(parameters={"x": 4}))
    # Make the only execution an old one: record it again an hour earlier, as another run.
    old = first.lineage_for("s")
    await t.history.delete_runs([first.run_id])
    aged = old._replace(
        run_id="old-run",
        started_at=old.started_at - timedelta(hours=1),
        finished_at=old.finished_at - timedelta(hours=1),
    )
    await t.history.record_lineage([aged])
    second = await t.run(RunRequest(parameters={"x": 4}))
    assert calls["scale"] == 2
    miss = await t.history.explain_miss(second.run_id, "s")
    assert miss is not None
    assert miss.reason == "expired_or_value_gone"
    third = await t.run(RunRequest(parameters={"x": 4}))
    assert third.lineage_for("s").cached_from == second.run_id


async def test_a_value_gone_from_the_data_store_means_execute_again() -> None:
    t = scaled(True)
    first = await t.run(RunRequest(parameters={"x": 4}))
    out = first.lineage_for("s").output_hash
    assert out is not None
    assert t.data_store is not None
    assert await t.data_store.delete(out)
    second = await t.run(RunRequest(parameters={"x": 4}))
    assert calls["scale"] == 2
    assert second.lineage_for("s").cached_from is None


async def test_failures_are_never_replayed() -> None:
    t = Tapestry(data_store=InMemoryDataStore())
    with t:
        flaky(x=Parameter("x", int), fail=True, _config=KnotConfig(id="f", cache=True))
    await t.run(RunRequest(parameters={"x": 1}))
    second = await t.run(RunRequest(parameters={"x": 1}))
    assert calls["flaky"] == 2
    miss = await t.history.explain_miss(second.run_id, "f")
    assert miss is not None
    assert miss.reason == "failed"


async def test_first_execution_is_explained() -> None:
    t = scaled(True)
    first = await t.run(RunRequest(parameters={"x": 4}))
    miss = await t.history.explain_miss(first.run_id, "s")
    assert miss is not None
    assert miss.reason == "first_execution"
    assert miss.previous is None
    with pytest.raises(KeyError, match="nope"):
        await t.history.explain_miss(first.run_id, "nope")


async def test_a_cached_knot_needs_a_data_store() -> None:
    with Tapestry() as t:
        scale(x=Parameter("x", int), factor=2, _config=KnotConfig(id="s", cache=True))
    with pytest.raises(WiringError, match=r"\['s'\].*data_store"):
        await t.run(RunRequest(parameters={"x": 1}))


_VERSION_1 = """
from pirn_like import knot

@knot
async def work(x: int) -> int:
    return x + 1
"""
_VERSION_1_REFORMATTED = """
from pirn_like import knot

# A comment and new blank lines are not code.
@knot
async def work(x: int) -> int:

    return x   +   1
"""
_VERSION_2 = """
from pirn_like import knot

@knot
async def work(x: int) -> int:
    return x + 2
"""


def _load(tmp_path: Path, source: str) -> Any:
    """Import (or re-import) module ``memo_work`` with this source."""
    (tmp_path / "memo_work.py").write_text(source)
    shutil.rmtree(tmp_path / "__pycache__", ignore_errors=True)  # same size, same second
    linecache.checkcache()
    sys.modules.pop("memo_work", None)
    importlib.invalidate_caches()
    sys.path.insert(0, str(tmp_path))
    try:
        return importlib.import_module("memo_work").work
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("memo_work", None)


async def test_editing_the_knot_code_invalidates_and_is_named(tmp_path: Path) -> None:
    history_from = Tapestry(data_store=InMemoryDataStore())
    outputs = []
    run_ids = []
    for source in (_VERSION_1, _VERSION_1_REFORMATTED, _VERSION_2):
        work = _load(tmp_path, source)
        t = Tapestry(history=history_from.history, data_store=history_from.data_store)
        with t:
            work(x=Parameter("x", int), _config=KnotConfig(id="w", cache=True))
        result = await t.run(RunRequest(parameters={"x": 1}))
        outputs.append(result.outputs["w"])
        run_ids.append(result.run_id)
    assert outputs == [2, 2, 3]
    history = history_from.history
    assert await history.explain_miss(run_ids[1], "w") is None  # formatting is not code
    miss = await history.explain_miss(run_ids[2], "w")
    assert miss is not None
    assert miss.changed == ("code",)


# -- no wrong cache hits: values differing in dtype, shape or names never share a key ---


def _key(value: object) -> str:
    with Tapestry():
        k = measure(data=Parameter("d"), _config=KnotConfig(id="m", cache=True))
    spec = cache_spec(k)
    assert spec is not None
    return spec.key({"data": content_hash(value)})


@given(
    hnp.arrays(
        dtype=st.sampled_from([np.int32, np.int64, np.float32, np.float64]),
        shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=4),
        elements=st.integers(-100, 100),
    ),
    st.sampled_from([np.int16, np.uint8, np.float16, np.complex64]),
)
def test_arrays_differing_in_dtype_or_shape_never_share_a_key(
    array: np.ndarray[Any, Any], other_dtype: type
) -> None:
    recast = array.astype(other_dtype)
    assert _key(recast) != _key(array)
    if array.size > 1:
        assert _key(array.reshape(-1)) != _key(array) or array.ndim == 1
        assert _key(array.reshape(1, -1)) != _key(array.reshape(-1))


@given(
    st.lists(st.integers(-5, 5), min_size=1, max_size=6),
    st.text(min_size=1, max_size=5),
    st.text(min_size=1, max_size=5),
)
def test_frames_differing_in_column_names_or_dtypes_never_share_a_key(
    values: list[int], name: str, other: str
) -> None:
    frame = pd.DataFrame({name: values})
    if other != name:
        assert _key(pd.DataFrame({other: values})) != _key(frame)
    assert _key(frame.astype("float64")) != _key(frame)
    assert _key(frame.astype("int32")) != _key(frame)
    assert _key(frame[name]) != _key(frame)  # a Series is not a one-column frame


async def test_a_run_with_a_recast_input_is_a_miss() -> None:
    t = Tapestry(data_store=InMemoryDataStore())
    with t:
        measure(data=Parameter("d"), _config=KnotConfig(id="m", cache=True))
    await t.run(RunRequest(parameters={"d": np.arange(3, dtype=np.float64)}))
    second = await t.run(RunRequest(parameters={"d": np.arange(3, dtype=np.float32)}))
    assert calls["measure"] == 2
    miss = await t.history.explain_miss(second.run_id, "m")
    assert miss is not None
    assert miss.changed == ("input:data",)
