"""A run to kill and resume, for tests/test_crash_resume.py.

Usage: python _crash_child.py HISTORY_URL DATA_URL EFFECTS_DIR RUN_ID MODE
MODE ``hang``: the ``gate`` knot prints "gate" and waits forever (to be killed);
``resume``: resume RUN_ID; ``run``: one uninterrupted run. Prints the outputs as JSON.
Every execution of a knot leaves a file in EFFECTS_DIR, to count executions.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import anyio

from pirn_like import KnotConfig, Parameter, RunRequest, Tapestry, knot

history_url, data_url, effects, run_id, mode = sys.argv[1:6]


def _effect(name: str) -> None:
    Path(effects, f"{name}.{os.getpid()}.{uuid.uuid4().hex}").touch()


@knot
async def work(n: int, k: int) -> list[int]:
    _effect(f"w{k}")
    return [n * k, k]


@knot
async def gate(**parts: Any) -> int:
    _effect("gate")
    if mode == "hang":
        print("gate", flush=True)
        await anyio.sleep_forever()
    return sum(v[0] for v in parts.values())


@knot
async def after(total: int) -> dict[str, int]:
    _effect("after")
    return {"total": total, "double": 2 * total}


async def main() -> None:
    t = Tapestry(history=history_url, data_store=data_url)
    with t:
        n = Parameter("n", int)
        parts = {f"p{k}": work(n=n, k=k, _config=KnotConfig(id=f"w{k}")) for k in range(6)}
        g = gate(**parts, _config=KnotConfig(id="gate"))
        after(total=g, _config=KnotConfig(id="after"))
    async with t:
        if mode == "resume":
            result = await t.resume(run_id)
        else:
            result = await t.run(RunRequest(parameters={"n": 3}, run_id=run_id))
    print(json.dumps({"status": result.status.value, "outputs": result.outputs}), flush=True)


anyio.run(main)
