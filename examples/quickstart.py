"""The quickstart: two knots wired to a parameter, run once.

Run it with ``python examples/quickstart.py``; it prints the outputs of every knot.
"""

from __future__ import annotations

import asyncio

from pirn_like import KnotConfig, Parameter, RunRequest, Tapestry, knot


@knot
async def double(x: int) -> int:
    return x * 2


@knot
async def add(a: int, b: int) -> int:
    return a + b


async def main() -> None:
    with Tapestry() as t:
        x = Parameter("x", int)
        d = double(x=x, _config=KnotConfig(id="d"))
        add(a=x, b=d, _config=KnotConfig(id="answer"))

    result = await t.run(RunRequest(parameters={"x": 5}))
    print(result.outputs)  # {'param:x': 5, 'd': 10, 'answer': 15}


if __name__ == "__main__":
    asyncio.run(main())
