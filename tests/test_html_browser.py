"""The HTML run report in a real browser: it renders without errors, shows every
knot, opens a knot's details on click and filters by outcome."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import pytest
from _fixtures_browser import BrowserSession, png_pixels
from _viz_runs import EVIL, failed_run
from playwright.async_api import Browser, Page

from pirn_like import RunResult, html_for_run

pytestmark = pytest.mark.xdist_group("browser")

KNOTS = {"param:x", "d", "boom", "after", "inc", "total"}
FAILED_FILL = bytes((0xF9, 0xD6, 0xD5))  # the report's fill for a failed knot


@pytest.fixture(scope="module")
def result() -> RunResult:
    return anyio.run(failed_run)[1]


def on_report(
    session: BrowserSession,
    result: RunResult,
    tmp_path: Path,
    check: Callable[[Page], Awaitable[None]],
) -> None:
    """Open the report from a file and run ``check`` on it; then assert that neither the
    console nor the page reported an error and no dialog (a script's alert) opened."""
    path = tmp_path / "run.html"
    path.write_text(html_for_run(result), encoding="utf-8")
    errors: list[str] = []

    async def visit(browser: Browser) -> None:
        page = await browser.new_page(viewport={"width": 1100, "height": 760})
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("dialog", lambda dialog: errors.append(f"dialog opened: {dialog.message}"))
        try:
            await page.goto(path.as_uri())
            await check(page)
        finally:
            await page.close()

    session.run(visit)
    assert errors == []


def test_every_knot_renders_without_console_errors(
    browser: BrowserSession, result: RunResult, tmp_path: Path
) -> None:
    async def check(page: Page) -> None:
        names = await page.locator("svg.pirn-graph g.knot text:first-of-type").all_text_contents()
        assert set(names) == KNOTS
        assert await page.locator("svg.pirn-timeline g.bar").count() == len(KNOTS)

    on_report(browser, result, tmp_path, check)


def test_clicking_a_knot_shows_its_details_and_error(
    browser: BrowserSession, result: RunResult, tmp_path: Path
) -> None:
    rec = result.lineage_for("boom")
    parent_output = result.lineage_for("d").output_hash
    assert parent_output is not None

    async def check(page: Page) -> None:
        await page.locator("svg.pirn-graph g.knot", has_text="boom").click()
        details = page.locator("#details-body")
        assert await details.locator("h3.knot-id").inner_text() == "boom"
        text = await details.inner_text()
        assert rec.knot_config_hash in text
        assert rec.execution_hash in text
        assert parent_output in text  # the input hash boom consumed
        # The hostile message shows as text; its script never runs (no dialog).
        message = await details.locator(".error-message").inner_text()
        assert message == f"builtins.ValueError: cannot use 10 {EVIL}"
        traceback = await details.locator(".traceback").inner_text()
        assert "Traceback (most recent call last)" in traceback
        # A lineage link leads to the parent knot's details.
        await details.locator("a.goto", has_text="d").first.click()
        assert await details.locator("h3.knot-id").inner_text() == "d"
        assert "used by" in await details.inner_text()

    on_report(browser, result, tmp_path, check)


def test_filter_buttons_hide_and_show_knots_by_outcome(
    browser: BrowserSession, result: RunResult, tmp_path: Path
) -> None:
    async def visible(page: Page, selector: str) -> list[bool]:
        items = page.locator(selector)
        return [await items.nth(i).is_visible() for i in range(await items.count())]

    async def check(page: Page) -> None:
        ok = 'svg.pirn-graph g.knot[data-outcome="ok"]'
        assert await visible(page, ok) == [True] * 4
        await page.locator('button[data-filter="ok"]').click()
        assert await visible(page, ok) == [False] * 4
        assert await visible(page, 'svg.pirn-timeline g.bar[data-outcome="ok"]') == [False] * 4
        assert await visible(page, 'g.knot[data-outcome="err"]') == [True]
        assert await visible(page, 'g.knot[data-outcome="skipped"]') == [True]
        await page.locator('button[data-filter="ok"]').click()
        assert await visible(page, ok) == [True] * 4

    on_report(browser, result, tmp_path, check)


def test_screenshot_shows_the_coloured_graph(
    browser: BrowserSession, result: RunResult, tmp_path: Path
) -> None:
    async def check(page: Page) -> None:
        await page.screenshot(path=tmp_path / "run.png", full_page=True)
        await page.locator("svg.pirn-graph").screenshot(path=tmp_path / "graph.png")

    on_report(browser, result, tmp_path, check)
    assert (tmp_path / "run.png").stat().st_size > 10_000
    width, height, rows = png_pixels((tmp_path / "graph.png").read_bytes())
    assert width > 300
    assert height > 100
    pixels = {row[i : i + 3] for row in rows for i in range(0, len(row), 3)}
    assert len(pixels) > 50  # text, edges and fills: not a blank image
    assert FAILED_FILL in pixels  # the failed knot is painted in its colour
