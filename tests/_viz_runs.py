"""Runs the view tests draw: a diamond with a failure, a skip and a clean branch."""

from __future__ import annotations

from pirn_like import KnotConfig, Parameter, RunRequest, RunResult, Tapestry, knot

EVIL = "</script><script>alert(1)</script>"


@knot
async def double(x: int) -> int:
    return x * 2


@knot
async def explode(a: int) -> int:
    raise ValueError(f"cannot use {a} {EVIL}")


@knot
async def passthrough(a: int) -> int:
    return a


@knot
async def total(a: int, b: int) -> int:
    return a + b


def build(history: str | None = None) -> Tapestry:
    """param:x -> d -> {boom -> after, inc}, total(d, inc): one failure, one skip."""
    with Tapestry(history=history) as t:
        x = Parameter("x", int)
        d = double(x=x, _config=KnotConfig(id="d"))
        boom = explode(a=d, _config=KnotConfig(id="boom"))
        passthrough(a=boom, _config=KnotConfig(id="after"))
        inc = passthrough(a=d, _config=KnotConfig(id="inc"))
        total(a=d, b=inc, _config=KnotConfig(id="total"))
    return t


async def failed_run(history: str | None = None) -> tuple[Tapestry, RunResult]:
    """The graph above, run with x=5."""
    t = build(history)
    return t, await t.run(RunRequest(parameters={"x": 5}))
