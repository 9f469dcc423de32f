"""Three-way results, error records, the three error policies and the Optional mixin.

Run it with ``python examples/results_and_policies.py``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pirn_like import (
    Err,
    ErrorPolicy,
    Knot,
    KnotConfig,
    Ok,
    Optional,
    Parameter,
    Result,
    RunRequest,
    Skipped,
    Tapestry,
    knot,
)


@knot
async def parse_age(text: str) -> int:
    return int(text)


@knot
async def next_birthday(age: int) -> int:
    return age + 1


@knot
async def describe(age: Result[int]) -> str:
    """Under RECEIVE_ERRORS the knot gets the parent's Result, not its value."""
    match age:
        case Ok(value=value):
            return f"age is {value}"
        case Err(record=record):
            return f"could not read the age ({record.type.rsplit('.', 1)[-1]})"
        case Skipped(reason=reason):
            return f"no age ({reason.value})"


class FetchPrefs(Optional, Knot):
    """An optional knot: its failure behaves like a skip downstream."""

    async def process(self, user_id: str, **_: Any) -> dict[str, str]:
        raise ConnectionError(f"preferences service unreachable for {user_id}")


@knot
async def greeting(prefs: dict[str, str]) -> str:
    return f"hello in {prefs['language']}"


def build() -> Tapestry:
    with Tapestry() as t:
        age = parse_age(text=Parameter("text", str), _config=KnotConfig(id="age"))
        next_birthday(age=age, _config=KnotConfig(id="skip_if_parent_failed"))
        next_birthday(
            age=age,
            _config=KnotConfig(id="require_all", error_policy=ErrorPolicy.REQUIRE_ALL_PARENTS),
        )
        describe(
            age=age,
            _config=KnotConfig(id="receive_errors", error_policy=ErrorPolicy.RECEIVE_ERRORS),
        )
        prefs = FetchPrefs(user_id="u-17", _config=KnotConfig(id="prefs"))
        greeting(prefs=prefs, _config=KnotConfig(id="greeting"))
    return t


async def main() -> None:
    t = build()
    good = await t.run(RunRequest(parameters={"text": "41"}))
    print("good input:", good.status.value, good.outputs["receive_errors"])

    bad = await t.run(RunRequest(parameters={"text": "forty-one"}))
    print("bad input:", bad.status.value)
    for knot_id in ("age", "skip_if_parent_failed", "require_all", "receive_errors", "prefs"):
        result = bad.result(knot_id)
        print(f"  {knot_id:<22} {type(result).__name__:<8} {result.outcome.value}")

    print("receive_errors said:", bad.outputs["receive_errors"])

    # An Err carries an ExceptionRecord: plain, serialisable data.
    err = bad.result("age")
    assert isinstance(err, Err)
    record = err.record
    print("record.type:", record.type)
    print("record.message:", record.message)
    print("record.knot_id:", record.knot_id)
    print("record.id:", record.id[:19] + "...")
    print("traceback ends with:", record.traceback.strip().splitlines()[-1])

    # The id is stable: the same failure in another run gets the same id.
    again = await t.run(RunRequest(parameters={"text": "forty-one"}))
    assert again.exceptions[0].id == record.id
    print("same error id across runs:", again.exceptions[0].id == record.id)

    # REQUIRE_ALL_PARENTS turned the failed parent into an error of its own.
    strict = bad.result("require_all")
    assert isinstance(strict, Err)
    print("require_all:", strict.record.message)

    # The optional knot failed, yet the run only counts real failures.
    prefs = bad.result("prefs")
    assert isinstance(prefs, Skipped)
    print("prefs skipped:", prefs.reason.value, "| greeting:", bad.result("greeting"))
    print("errors of the run:", [e.knot_id for e in bad.exceptions])


if __name__ == "__main__":
    asyncio.run(main())
