"""Resuming interrupted runs: replay what finished, run the rest, same run id."""

from __future__ import annotations

from collections import Counter

import anyio
import pytest

from pirn_like import (
    InMemoryDataStore,
    KnotConfig,
    Outcome,
    Parameter,
    ResumeError,
    RunRequest,
    RunStatus,
    Tapestry,
    knot,
)

pytestmark = pytest.mark.anyio

calls: Counter[str] = Counter()
broken: set[str] = set()


@knot
async def step(x: int, name: str) -> int:
    calls[name] += 1
    if name in broken:
        raise RuntimeError(f"{name} is broken")
    return x + 1


@knot
async def join(a: int, b: int) -> int:
    calls["join"] += 1
    return a + b


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()
    broken.clear()


def _diamond() -> Tapestry:
    """x -> left, right -> join -> tail; ``right`` can be broken."""
    t = Tapestry(data_store=InMemoryDataStore())
    with t:
        x = Parameter("x", int)
        left = step(x=x, name="left", _config=KnotConfig(id="left"))
        right = step(x=x, name="right", _config=KnotConfig(id="right"))
        j = join(a=left, b=right, _config=KnotConfig(id="join"))
        step(x=j, name="tail", _config=KnotConfig(id="tail"))
    return t


async def test_resume_reruns_only_what_did_not_finish() -> None:
    t = _diamond()
    broken.add("right")
    failed = await t.run(RunRequest(parameters={"x": 1}))
    assert failed.status is RunStatus.FAILED
    assert calls == Counter(left=1, right=1)
    broken.clear()
    resumed = await t.resume(failed.run_id)
    assert resumed.run_id == failed.run_id
    assert resumed.status is RunStatus.SUCCEEDED
    assert calls == Counter(left=1, right=2, join=1, tail=1)  # left was replayed
    assert resumed.outputs["tail"] == 2 + 2 + 1
    assert resumed.outputs["left"] == 2
    record = await t.history.get_run(failed.run_id)
    assert record is not None
    assert record.status is RunStatus.SUCCEEDED
    assert record.started_at == failed.started_at
    # Replayed knots keep their one record; the failed attempt of `right` and the
    # skips it caused stay on record next to the executions that followed.
    rows = Counter((r.knot_id, r.outcome) for r in await t.history.get_lineage(failed.run_id))
    ok, err, skipped = Outcome.OK, Outcome.ERR, Outcome.SKIPPED
    assert rows == Counter(
        {
            ("param:x", ok): 1,
            ("left", ok): 1,
            ("right", err): 1,
            ("right", ok): 1,
            ("join", skipped): 1,
            ("join", ok): 1,
            ("tail", skipped): 1,
            ("tail", ok): 1,
        }
    )
    assert resumed.lineage_for("right").outcome is Outcome.OK


async def test_resume_of_a_cancelled_run() -> None:
    t = Tapestry(data_store=InMemoryDataStore())
    started = anyio.Event()
    release = anyio.Event()

    @knot
    async def gate(x: int) -> int:
        started.set()
        await release.wait()
        return x

    with t:
        first = step(x=Parameter("x", int), name="first", _config=KnotConfig(id="first"))
        g = gate(x=first, _config=KnotConfig(id="gate"))
        step(x=g, name="last", _config=KnotConfig(id="last"))
    run_id = "run-to-cancel"
    async with anyio.create_task_group() as tg:

        async def run() -> None:
            await t.run(RunRequest(parameters={"x": 1}, run_id=run_id))

        tg.start_soon(run)
        with anyio.fail_after(10):
            await started.wait()
        tg.cancel_scope.cancel()
    record = await t.history.get_run(run_id)
    assert record is not None
    assert record.status is RunStatus.CANCELLED
    release.set()
    resumed = await t.resume(run_id)
    assert resumed.status is RunStatus.SUCCEEDED
    assert calls == Counter(first=1, last=1)
    assert resumed.outputs["last"] == 3


async def test_resume_refuses_what_it_cannot_do() -> None:
    t = _diamond()
    done = await t.run(RunRequest(parameters={"x": 1}))
    with pytest.raises(ResumeError, match="already succeeded"):
        await t.resume(done.run_id)
    with pytest.raises(ResumeError, match="no run 'nope'"):
        await t.resume("nope")
    broken.add("right")
    without_store = Tapestry(history=t.history)
    with without_store:
        step(x=Parameter("x", int), name="right", _config=KnotConfig(id="right"))
    failed = await without_store.run(RunRequest(parameters={"x": 1}))
    with pytest.raises(ResumeError, match="data store"):
        await without_store.resume(failed.run_id)


async def test_a_parameter_value_gone_from_the_store_is_named() -> None:
    t = _diamond()
    broken.add("right")
    failed = await t.run(RunRequest(parameters={"x": 7}))
    x_hash = failed.lineage_for("param:x").output_hash
    assert x_hash is not None
    assert t.data_store is not None
    await t.data_store.delete(x_hash)
    with pytest.raises(ResumeError, match="parameter 'x'"):
        await t.resume(failed.run_id)
