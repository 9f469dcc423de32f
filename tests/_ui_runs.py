"""A SQLite history holding real runs for the run explorer's tests: successes, a
failure (with a hostile message) with a skipped child, runs started by different
triggers, hostile strings. Also the explorer served to a browser page, which the
browser tests and scripts/docs_screenshots.py share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from _viz_runs import double, passthrough, total
from anyio.abc import TaskStatus
from playwright.async_api import Browser, Page

from pirn_like import KnotConfig, Parameter, RunRequest, RunResult, Tapestry, knot
from pirn_like.ui import run_ui

EVIL = "</script><script>alert(1)</script><img src=x onerror=alert(2)>"
TOKEN = "ui-test-token-0123456789"


@knot
async def check(a: int) -> int:
    if a >= 10:
        raise ValueError(f"too big: {a} {EVIL}")  # kept in history, shown inert
    return a


@knot
async def checked(a: int) -> int:
    if a >= 10:
        raise ValueError(f"too big: {a} (the limit is 9)")
    return a


@dataclass(frozen=True)
class Runs:
    """The history's URL and the runs recorded in it."""

    url: str
    ok: RunResult
    failed: RunResult
    cron: RunResult
    hostile: RunResult


async def record_runs(directory: Path, *, hostile: bool = True) -> Runs:
    """param:x -> d -> {check -> after, inc}; total(d, inc). x >= 5 makes check fail.

    The runs share values (run-ok's d outputs 2, run-cron's parameter is 2), so a
    hash's provenance spans runs. ``hostile=False`` (for screenshots) records the
    webhook run and the failure with plain strings instead of markup.
    """
    url = f"sqlite:///{directory / 'runs.db'}"
    evil = EVIL if hostile else "orders.csv"
    with Tapestry(history=url) as t:
        x = Parameter("x", int)
        d = double(x=x, _config=KnotConfig(id="d"))
        c = (check if hostile else checked)(a=d, _config=KnotConfig(id="check"))
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
        webhook = await t.run(
            RunRequest(
                parameters={"x": 3},
                run_id=f"run-{evil}",
                trigger={"kind": "webhook", "source": evil},
                labels={"note": evil},
            )
        )
    return Runs(url=url, ok=ok, failed=failed, cron=cron, hostile=webhook)


@dataclass
class ExplorerPage:
    """A browser page on the explorer at ``base``, signed in; ``errors`` collects what
    the console and page reported and any dialog that opened (all should stay empty)."""

    page: Page
    base: str
    errors: list[str] = field(default_factory=list[str])


@asynccontextmanager
async def explorer_page(
    browser: Browser, history_url: str, *, width: int = 1200, height: int = 900
) -> AsyncIterator[ExplorerPage]:
    """Serve the explorer over ``history_url`` on this loop and open it with the token
    once (which sets the cookie and leaves the address bar)."""

    async def serve(task_status: TaskStatus[int]) -> None:
        await run_ui(history_url, port=0, token=TOKEN, task_status=task_status)

    async with anyio.create_task_group() as tg:
        port = await tg.start(serve)
        base = f"http://127.0.0.1:{port}"
        context = await browser.new_context(viewport={"width": width, "height": height})
        page = await context.new_page()
        opened = ExplorerPage(page, base)
        page.on("console", lambda m: opened.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: opened.errors.append(str(exc)))
        page.on("dialog", lambda d: opened.errors.append(f"dialog opened: {d.message}"))
        try:
            await page.goto(f"{base}/?token={TOKEN}")
            assert page.url == f"{base}/"  # the token left the address bar
            yield opened
        finally:
            await context.close()
            tg.cancel_scope.cancel()
