"""The run explorer in a real browser: served by uvicorn over a SQLite history,
clicked through from the runs list to a run and on to a hash's lineage."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import pytest
from _fixtures_browser import BrowserSession, png_pixels
from _ui_runs import Runs, explorer_page, record_runs
from playwright.async_api import Browser, Page

pytestmark = pytest.mark.xdist_group("browser")

FAILED_FILL = bytes((0xF9, 0xD6, 0xD5))  # the graph's fill for a failed knot


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    return anyio.run(record_runs, tmp_path_factory.mktemp("ui-browser"))


def in_explorer(
    session: BrowserSession, runs: Runs, check: Callable[[Page, str], Awaitable[None]]
) -> None:
    """Serve the explorer on the browser's loop, open it signed in and run
    ``check(page, base_url)``; then assert that neither the console nor the page
    reported an error and no dialog opened."""
    errors: list[str] = []

    async def visit(browser: Browser) -> None:
        async with explorer_page(browser, runs.url) as opened:
            try:
                await check(opened.page, opened.base)
            finally:
                errors.extend(opened.errors)

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


def test_lineage_search_draws_the_whole_provenance_and_navigates_by_click(
    browser: BrowserSession, runs: Runs
) -> None:
    """d's output in run-ok (the value 2) was made from run-ok's parameter (3 hops up)
    and, as run-cron's parameter is also 2, everything run-cron derived from it lies
    downstream (4 hops): one graph across runs, each node a link."""
    d = runs.ok.lineage_for("d")
    total_cron = runs.cron.lineage_for("total")
    assert d.output_hash is not None
    assert total_cron.output_hash is not None

    async def check(page: Page, base: str) -> None:
        await page.locator("header nav a", has_text="Lineage").click()
        await page.locator('input[name="hash"]').fill(d.output_hash or "")
        await page.locator('form.filters button[type="submit"]').click()
        await page.wait_for_url(f"{base}/lineage?hash=*")
        graph = page.locator("svg.pirn-provenance")
        assert await graph.is_visible()
        nodes = graph.locator("g.prov-node")
        columns = [int(c) for c in await nodes.evaluate_all("ns => ns.map(n => n.dataset.column)")]
        assert (min(columns), max(columns)) == (-3, 4)
        labels = await graph.locator("g.prov-node text:first-of-type").all_text_contents()
        assert {"param:x", "d", "check", "inc", "after", "total"} <= set(labels)
        searched = graph.locator('g.prov-node[data-column="0"]')
        assert await searched.get_attribute("data-id") == d.output_hash
        assert (
            "3 hops upstream, 4 hops downstream"
            in await page.locator("section.provenance p.summary").inner_text()
        )
        # Click run-cron's total output (4 hops down): its own provenance opens.
        far = graph.locator(f'a.prov-link:has(g[data-id="{total_cron.output_hash}"])')
        await far.click()
        await page.wait_for_url(f"{base}/lineage?hash=*")
        assert await page.locator("code.searched").inner_text() == total_cron.output_hash
        again = page.locator("svg.pirn-provenance")
        producer = again.locator('a.prov-link:has(g[data-kind="execution"][data-column="-1"])')
        assert await producer.count() == 1
        # Click the execution that produced it: its knot in its run.
        await producer.click()
        await page.wait_for_url(f"{base}/runs/run-cron#knot-total")
        assert await page.locator("svg.pirn-graph").is_visible()

    in_explorer(browser, runs, check)
