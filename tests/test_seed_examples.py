"""The core examples of the pirn README, with pirn replaced by pirn_like."""

from __future__ import annotations

from typing import Any

import pytest

from pirn_like import (
    Branch,
    Err,
    ErrorPolicy,
    Knot,
    KnotConfig,
    Map,
    Ok,
    Optional,
    Parameter,
    Reduce,
    RunRequest,
    Skipped,
    SkipReason,
    Tapestry,
    knot,
)

pytestmark = pytest.mark.anyio


@knot
async def double(x: int) -> int:
    return x * 2


@knot
async def add(a: int, b: int) -> int:
    return a + b


async def test_quickstart_prints_the_seed_outputs() -> None:
    with Tapestry() as t:
        x = Parameter("x", int)
        d = double(x=x, _config=KnotConfig(id="d"))
        add(a=x, b=d, _config=KnotConfig(id="answer"))

    result = await t.run(RunRequest(parameters={"x": 5}))
    assert result.outputs == {"param:x": 5, "d": 10, "answer": 15}
    assert list(result.outputs) == ["param:x", "d", "answer"]
    assert result.succeeded
    assert result.skipped == []
    assert result.exceptions == []
    assert {rec.knot_id for rec in result.lineage} == {"param:x", "d", "answer"}
    assert set(result.timings) == {"param:x", "d", "answer"}
    states = [(e.knot_id, e.state) for e in result.status_events]
    assert ("answer", "ok") in states
    assert states.index(("d", "ok")) < states.index(("answer", "running"))


class Scale(Knot):
    async def process(self, value: int, factor: int, **_: Any) -> int:
        return value * factor


async def test_knot_classes_register_explicitly_and_by_keyword() -> None:
    t = Tapestry()
    x = Parameter("x", int, tapestry=t)
    s = Scale(value=x, factor=3, _config=KnotConfig(id="s"), tapestry=t)
    loose = Scale(value=s, factor=2, _config=KnotConfig(id="loose"))
    t.register(loose)
    result = await t.run(RunRequest(parameters={"x": 2}), terminals=loose)
    assert result.outputs["loose"] == 12
    assert result.lineage_for("s").knot_class == f"{__name__}.Scale"


async def test_terminals_limit_what_runs() -> None:
    ran: list[str] = []

    @knot
    async def mark(tag: str) -> str:
        ran.append(tag)
        return tag

    with Tapestry() as t:
        a = mark(tag="a", _config=KnotConfig(id="a"))
        mark(tag="b", _config=KnotConfig(id="b"))
    result = await t.run(RunRequest(), terminals=[a])
    assert ran == ["a"]
    assert result.terminals_requested == ["a"]


class FetchPrefs(Optional, Knot):
    async def process(self, user_id: str, **_: Any) -> dict[str, str]:
        raise ConnectionError(f"prefs service down for {user_id}")


async def test_optional_mixin_turns_err_into_skipped_downstream() -> None:
    @knot
    async def greet(prefs: dict[str, str]) -> str:
        return "hi"

    with Tapestry() as t:
        prefs = FetchPrefs(user_id="u1", _config=KnotConfig(id="prefs"))
        greet(prefs=prefs, _config=KnotConfig(id="greet"))
    result = await t.run(RunRequest())
    assert result.succeeded
    prefs_result = result.result("prefs")
    assert isinstance(prefs_result, Skipped)
    assert prefs_result.reason is SkipReason.OPTIONAL_FAILED
    assert "ConnectionError" in prefs_result.detail
    lineage = result.lineage_for("prefs")
    assert lineage.skip_reason is SkipReason.OPTIONAL_FAILED
    assert lineage.error_record_id is not None
    assert isinstance(result.result("greet"), Skipped)


async def test_node_taxonomy_example() -> None:
    @knot
    async def record_ids_source() -> list[int]:
        return [1, 2, 3]

    @knot
    async def enrich_record(record_id: int) -> int:
        return record_id * 10

    @knot
    async def message() -> dict[str, str]:
        return {"type": "tool", "body": "x"}

    @knot
    async def handle_tool(payload: dict[str, str]) -> str:
        return "tool:" + payload["body"]

    @knot
    async def handle_resp(payload: dict[str, str]) -> str:
        return "resp"

    with Tapestry() as t:
        record_ids = record_ids_source(_config=KnotConfig(id="record_ids"))
        users = Map(
            over=record_ids,
            each=enrich_record,
            bind="record_id",
            _config=KnotConfig(id="users"),
        )
        Reduce(of=users, combine=sum, _config=KnotConfig(id="total"))
        msg = message(_config=KnotConfig(id="msg"))
        b = Branch(
            input=msg,
            selector=lambda m: m["type"],
            branches=("tool", "response"),
            _config=KnotConfig(id="route"),
        )
        handle_tool(payload=b["tool"], _config=KnotConfig(id="t"))
        handle_resp(payload=b["response"], _config=KnotConfig(id="r"))

    result = await t.run(RunRequest())
    assert result.outputs["users"] == [10, 20, 30]
    assert result.outputs["total"] == 60
    assert result.outputs["t"] == "tool:x"
    assert result.outputs["route"] == "tool"
    assert isinstance(result.result("r"), Skipped)
    arm = result.lineage_for("route[response]")
    assert arm.skip_reason is SkipReason.BRANCH_NOT_SELECTED
    assert "'tool'" in (arm.skip_detail or "")
    item_ids = sorted(r.knot_id for r in result.lineage if r.knot_id.startswith("users["))
    assert item_ids == ["users[0]", "users[1]", "users[2]"]
    assert result.succeeded


async def test_result_is_three_way() -> None:
    @knot
    async def boom() -> int:
        raise ValueError("bad input 42")

    @knot
    async def after(v: int) -> int:
        return v

    with Tapestry() as t:
        b = boom(_config=KnotConfig(id="boom"))
        after(v=b, _config=KnotConfig(id="after"))
        after(v=b, _config=KnotConfig(id="strict", error_policy=ErrorPolicy.REQUIRE_ALL_PARENTS))
    result = await t.run(RunRequest())
    assert not result.succeeded
    err = result.result("boom")
    assert isinstance(err, Err)
    assert err.record.type == "builtins.ValueError"
    assert err.record.message == "bad input 42"
    assert "raise ValueError" in err.record.traceback
    assert err.record.id.startswith("sha256:")
    assert isinstance(result.result("after"), Skipped)
    strict = result.result("strict")
    assert isinstance(strict, Err)
    assert "requires all parents" in strict.record.message
    assert isinstance(Ok(1), Ok)
