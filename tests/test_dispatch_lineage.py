"""Lineage does not depend on where knots ran: one tapestry on every dispatcher gives
the same records, except for times, run ids and the dispatcher's name."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from _dispatch_knots import add, add_async, fail_with
from celery import Celery

from pirn_like import (
    CeleryDispatcher,
    DaskDispatcher,
    KnotConfig,
    KnotLineage,
    LocalDispatcher,
    Parameter,
    ProcessDispatcher,
    RayDispatcher,
    RunRequest,
    Tapestry,
    ThreadDispatcher,
)

# The Ray group's worker owns the costliest cluster; Dask and Celery are cheap to add.
pytestmark = [
    pytest.mark.anyio,
    pytest.mark.xdist_group("ray"),
    pytest.mark.usefixtures("celery_worker", "ray_cluster"),
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # Dask, Ray: asyncio only


def _tapestry(dispatcher: Any) -> Tapestry:
    t = Tapestry(dispatcher=dispatcher)
    with t:
        x = Parameter("x", int)
        s = add(a=x, b=10, _config=KnotConfig(id="sum"))
        add_async(a=s, b=x, _config=KnotConfig(id="async_sum"))
        fail_with(message="no luck", _config=KnotConfig(id="fails"))
    return t


def _comparable(rec: KnotLineage) -> KnotLineage:
    return rec._replace(run_id="", dispatcher="", started_at=_EPOCH, finished_at=_EPOCH)


async def test_every_dispatcher_records_the_same_lineage(
    dask_scheduler: str, celery_app: Celery
) -> None:
    makers: dict[str, Callable[[], Any]] = {
        "LocalDispatcher": LocalDispatcher,
        "ThreadDispatcher": lambda: ThreadDispatcher(max_workers=2),
        "ProcessDispatcher": lambda: ProcessDispatcher(max_workers=2),
        "DaskDispatcher": lambda: DaskDispatcher(scheduler=dask_scheduler),
        "RayDispatcher": RayDispatcher,
        "CeleryDispatcher": lambda: CeleryDispatcher(celery_app),
    }
    lineages: dict[str, list[KnotLineage]] = {}
    for name, make in makers.items():
        async with _tapestry(make()) as t:
            result = await t.run(RunRequest(parameters={"x": 5}))
        assert result.outputs["async_sum"] == 20, name
        assert result.result("fails").record.message == "no luck", name
        assert {rec.dispatcher for rec in result.lineage if rec.knot_id != "param:x"} == {name}
        lineages[name] = sorted(map(_comparable, result.lineage), key=lambda r: r.knot_id)
    reference = lineages.pop("LocalDispatcher")
    assert [r.knot_id for r in reference] == ["async_sum", "fails", "param:x", "sum"]
    for name, records in lineages.items():
        assert records == reference, name
