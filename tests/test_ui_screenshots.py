"""scripts/docs_screenshots.py renders the report and the explorer's pages in headless
Chromium: every PNG it promises is written, small enough for the docs, and not blank."""

from __future__ import annotations

import importlib.util
import struct
from pathlib import Path
from types import ModuleType

import pytest
from _fixtures_browser import BrowserSession, png_data, png_pixels
from playwright.async_api import Browser

pytestmark = pytest.mark.xdist_group("browser")

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "docs_screenshots.py"
FAILED_FILL = bytes((0xF9, 0xD6, 0xD5))  # the fill of a failed knot, in every view


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_screenshots", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_docs_screenshots_are_written_small_and_not_blank(
    browser: BrowserSession, tmp_path: Path
) -> None:
    script = _script()
    out, work = tmp_path / "img", tmp_path / "work"
    work.mkdir()

    async def capture(chromium: Browser) -> list[Path]:
        return await script.capture(chromium, out, work)

    shots = browser.run(capture)
    assert [p.name for p in shots] == list(script.SHOTS)
    for path in shots:
        assert 10_000 < path.stat().st_size < 150_000, path
        header, raw = png_data(path.read_bytes())
        width, height = struct.unpack(">II", header[:8])
        assert (width, height) >= (1000, 700), path
        # A blank page filters to a few byte values (and compresses under 10 kB);
        # text, fills and antialiased edges take most of the 256.
        assert len(set(raw)) > 150, f"{path} looks blank"
    # Decoding pixels in Python is slow: check the colours of one view fully.
    _, _, rows = png_pixels((out / "explorer-run.png").read_bytes())
    colours = {row[i : i + 3] for row in rows for i in range(0, len(row), 3)}
    assert len(colours) > 50
    assert FAILED_FILL in colours
