"""A SQLite history holding real runs for the run explorer's tests: successes, a
failure (with a hostile message) with a skipped child, runs started by different
triggers, hostile strings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from _viz_runs import double, passthrough, total

from pirn_like import KnotConfig, Parameter, RunRequest, RunResult, Tapestry, knot

EVIL = "</script><script>alert(1)</script><img src=x onerror=alert(2)>"
TOKEN = "ui-test-token-0123456789"


@knot
async def check(a: int) -> int:
    if a >= 10:
        raise ValueError(f"too big: {a} {EVIL}")  # kept in history, shown inert
    return a


@dataclass(frozen=True)
class Runs:
    """The history's URL and the runs recorded in it."""

    url: str
    ok: RunResult
    failed: RunResult
    cron: RunResult
    hostile: RunResult


async def record_runs(directory: Path) -> Runs:
    """param:x -> d -> {check -> after, inc}; total(d, inc). x >= 5 makes check fail."""
    url = f"sqlite:///{directory / 'runs.db'}"
    with Tapestry(history=url) as t:
        x = Parameter("x", int)
        d = double(x=x, _config=KnotConfig(id="d"))
        c = check(a=d, _config=KnotConfig(id="check"))
        passthrough(a=c, _config=KnotConfig(id="after"))
        inc = passthrough(a=d, _config=KnotConfig(id="inc"))
        total(a=d, b=inc, _config=KnotConfig(id="total"))
    async with t:
        ok = await t.run(RunRequest(parameters={"x": 1}, run_id="run-ok"))
        failed = await t.run(RunRequest(parameters={"x": 5}, run_id="run-failed"))
        cron = await t.run(
            RunRequest(
                parameters={"x": 2},
                run_id="run-cron",
                trigger={"kind": "cron", "source": "*/5 * * * *"},
            )
        )
        hostile = await t.run(
            RunRequest(
                parameters={"x": 3},
                run_id=f"run-{EVIL}",
                trigger={"kind": "webhook", "source": EVIL},
                labels={"note": EVIL},
            )
        )
    return Runs(url=url, ok=ok, failed=failed, cron=cron, hostile=hostile)
