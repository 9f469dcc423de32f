"""The run explorer in a real browser: served by uvicorn over a SQLite history,
clicked through from the runs list to a run and on to a hash's lineage."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import pytest
from _fixtures_browser import BrowserSession, png_pixels
from _ui_runs import TOKEN, Runs, record_runs
from anyio.abc import TaskStatus
from playwright.async_api import Browser, Page

from pirn_like.ui import run_ui

pytestmark = pytest.mark.xdist_group("browser")

FAILED_FILL = bytes((0xF9, 0xD6, 0xD5))  # the graph's fill for a failed knot


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    return anyio.run(record_runs, tmp_path_factory.mktemp("ui-browser"))


def in_explorer(
    session: BrowserSession, runs: Runs, check: Callable[[Page, str], Awaitable[None]]
) -> None:
    """Serve the explorer on the browser's loop, open it with the token once (which
    sets the cookie) and run ``check(page, base_url)``; then assert that neither the
    console nor the page reported an error and no dialog opened."""
    errors: list[str] = []

    async def serve(task_status: TaskStatus[int]) -> None:
        await run_ui(runs.url, port=0, token=TOKEN, task_status=task_status)

    async def visit(browser: Browser) -> None:
        async with anyio.create_task_group() as tg:
            port = await tg.start(serve)
            base = f"http://127.0.0.1:{port}"
            context = await browser.new_context(viewport={"width": 1200, "height": 900})
            page = await context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("dialog", lambda d: errors.append(f"dialog opened: {d.message}"))
            try:
                await page.goto(f"{base}/?token={TOKEN}")
                assert page.url == f"{base}/"  # the token left the address bar
                await check(page, base)
            finally:
                await context.close()
                tg.cancel_scope.cancel()

    session.run(visit)
    assert errors == []


def test_runs_list_renders_and_leads_to_a_run_and_a_hash(
    browser: BrowserSession, runs: Runs, tmp_path: Path
) -> None:
    d = runs.failed.lineage_for("d")
    assert d.output_hash is not None

    async def check(page: Page, base: str) -> None:
        rows = page.locator("tr.run")
        assert await rows.count() == 4
        assert await page.locator('tr.run[data-status="failed"]').count() == 1
        await page.locator("a.run-link", has_text="run-failed").click()
        await page.wait_for_url(f"{base}/runs/run-failed")
        graph = page.locator("svg.pirn-graph")
        assert await graph.is_visible()
        names = await graph.locator("g.knot text:first-of-type").all_text_contents()
        assert set(names) == {rec.knot_id for rec in runs.failed.lineage}
        assert await page.locator("svg.pirn-timeline g.bar").count() == len(runs.failed.lineage)
        await page.screenshot(path=tmp_path / "run.png", full_page=True)
        await graph.screenshot(path=tmp_path / "graph.png")
        # d's output hash leads to its lineage: produced by d, consumed by check and inc.
        await page.locator("#knot-d a.hash").last.click()
        await page.wait_for_url(f"{base}/lineage?hash=*")
        assert await page.locator("code.searched").inner_text() == d.output_hash
        producers = await page.locator("section.producers a.knot-link").all_text_contents()
        assert "d" in producers
        consumers = await page.locator("section.consumers a.knot-link").all_text_contents()
        assert {"check", "inc", "total"} <= set(consumers)

    in_explorer(browser, runs, check)
    assert (tmp_path / "run.png").stat().st_size > 10_000
    width, height, rows = png_pixels((tmp_path / "graph.png").read_bytes())
    assert width > 300
    assert height > 100
    pixels = {row[i : i + 3] for row in rows for i in range(0, len(row), 3)}
    assert len(pixels) > 50  # text, edges and fills: not a blank image
    assert FAILED_FILL in pixels


def test_status_filter_form_narrows_the_list(browser: BrowserSession, runs: Runs) -> None:
    async def check(page: Page, base: str) -> None:
        await page.locator('select[name="status"]').select_option("failed")
        await page.locator('form.filters button[type="submit"]').click()
        await page.wait_for_url(f"{base}/?status=failed*")
        assert await page.locator("a.run-link").all_text_contents() == ["run-failed"]

    in_explorer(browser, runs, check)
