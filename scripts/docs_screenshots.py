"""Render the docs' screenshots in headless Chromium: the HTML run report and the run
explorer's runs list, run page and lineage page, over a SQLite history of real runs.

    .venv/bin/python scripts/docs_screenshots.py docs/img

Uses the browser tests' code (tests/_ui_runs.py records the runs and serves the
explorer to a page) and Debian's Chromium (tests/_fixtures_browser.py names it).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import anyio
from playwright.async_api import Browser, Page, async_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _fixtures_browser import CHROMIUM
from _ui_runs import explorer_page, record_runs

from pirn_like.viz import html_for_run

WIDTH, HEIGHT = 1000, 700
REPORT_VIEWPORT = {"width": 1280, "height": 720}  # the graph beside the details
LINEAGE_VIEWPORT = {"width": 1440, "height": 720}  # six columns of the provenance graph
SHOTS = ("report.png", "explorer-runs.png", "explorer-run.png", "explorer-lineage.png")


async def _shoot(page: Page, path: Path) -> Path:
    await page.screenshot(path=path)
    return path


async def capture(browser: Browser, out: Path, workdir: Path) -> list[Path]:
    """Record runs under ``workdir`` and write the ``SHOTS`` into ``out``."""
    await anyio.Path(out).mkdir(parents=True, exist_ok=True)
    runs = await record_runs(workdir, hostile=False)
    report = workdir / "report.html"
    await anyio.Path(report).write_text(html_for_run(runs.failed), encoding="utf-8")
    page = await browser.new_page(viewport=REPORT_VIEWPORT)
    try:
        await page.goto(report.as_uri())
        await page.locator('svg.pirn-graph g.knot[data-outcome="err"]').first.click()
        await page.evaluate("document.querySelectorAll('*').forEach(e => { e.scrollLeft = 0 })")
        shots = [await _shoot(page, out / SHOTS[0])]
    finally:
        await page.close()
    d = runs.failed.lineage_for("d")  # 3 hops up, 2 down (one of them failed)
    async with explorer_page(browser, runs.url, width=WIDTH, height=HEIGHT) as opened:
        page, base = opened.page, opened.base
        shots.append(await _shoot(page, out / SHOTS[1]))
        await page.goto(f"{base}/runs/run-failed")
        shots.append(await _shoot(page, out / SHOTS[2]))
        await page.set_viewport_size(LINEAGE_VIEWPORT)
        await page.goto(f"{base}/lineage?hash={d.output_hash}")
        await page.evaluate("document.querySelector('section.provenance').scrollIntoView()")
        shots.append(await _shoot(page, out / SHOTS[3]))
        if opened.errors:
            raise RuntimeError(f"the explorer reported errors: {opened.errors}")
    return shots


async def main(out: Path) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            with tempfile.TemporaryDirectory() as workdir:
                for path in await capture(browser, out, Path(workdir)):
                    print(f"{path} ({path.stat().st_size // 1024} KiB)")
        finally:
            await browser.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="directory to write the PNGs into")
    anyio.run(main, parser.parse_args().out, backend="asyncio")
