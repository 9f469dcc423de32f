"""Which dispatcher runs a knot: the tapestry's, the run's, or one the knot pins."""

from __future__ import annotations

import threading

import pytest

from pirn_like import (
    KnotConfig,
    LocalDispatcher,
    Parameter,
    RunRequest,
    Tapestry,
    ThreadDispatcher,
    WiringError,
    knot,
)

pytestmark = pytest.mark.anyio

main_thread = threading.get_ident()


@knot
def where(x: int) -> tuple[int, bool]:
    return x, threading.get_ident() == main_thread


@knot
async def follow(pair: tuple[int, bool]) -> int:
    return pair[0] + 1


def _tapestry(**kwargs: object) -> Tapestry:
    t = Tapestry(dispatchers={"threads": ThreadDispatcher(max_workers=2)}, **kwargs)  # type: ignore[arg-type]
    with t:
        x = Parameter("x", int)
        pinned = where(x=x, _config=KnotConfig(id="pinned", dispatcher="threads"))
        where(x=x, _config=KnotConfig(id="free"))
        follow(pair=pinned, _config=KnotConfig(id="after"))
    return t


async def test_a_pinned_knot_runs_on_its_dispatcher_and_lineage_says_so() -> None:
    t = _tapestry()
    result = await t.run(RunRequest(parameters={"x": 1}))
    assert result.outputs["after"] == 2
    by_knot = {rec.knot_id: rec.dispatcher for rec in result.lineage}
    assert by_knot["pinned"] == "ThreadDispatcher"
    assert by_knot["free"] == "LocalDispatcher"
    assert by_knot["after"] == "LocalDispatcher"


async def test_the_run_dispatcher_changes_the_rest_but_not_the_pinned() -> None:
    t = _tapestry()

    class Named(LocalDispatcher):
        pass

    result = await t.run(RunRequest(parameters={"x": 1}), dispatcher=Named())
    by_knot = {rec.knot_id: rec.dispatcher for rec in result.lineage}
    assert by_knot["pinned"] == "ThreadDispatcher"
    assert by_knot["free"] == "Named"


async def test_pinning_does_not_change_the_config_hash() -> None:
    with Tapestry():
        a = where(x=1, _config=KnotConfig(id="a", dispatcher="threads"))
        b = where(x=1, _config=KnotConfig(id="b"))
    assert a.config_hash == b.config_hash


async def test_an_unknown_dispatcher_name_is_refused_before_anything_runs() -> None:
    with Tapestry() as t:
        where(x=1, _config=KnotConfig(id="lost", dispatcher="gpu"))
    with pytest.raises(WiringError, match=r"knot 'lost' pins dispatcher 'gpu'.*dispatchers="):
        await t.run()
    assert await t.history.list_runs() == []
