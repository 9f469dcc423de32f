"""A headless Chromium (Debian's, driven by Playwright), once per test session.

Playwright cannot download its own browsers here: it drives /usr/bin/chromium
(``apt-get install chromium``; scripts/test.sh installs it when missing).
"""

from __future__ import annotations

import shutil
import struct
import zlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from playwright.async_api import Browser, async_playwright

CHROMIUM = "/usr/bin/chromium"
T = TypeVar("T")


@dataclass(frozen=True)
class BrowserSession:
    """A browser driven from its own event loop thread: tests stay synchronous, and
    no loop is left running in the test thread (where anyio tests run their own)."""

    portal: BlockingPortal
    browser: Browser

    def run(self, check: Callable[[Browser], Awaitable[T]]) -> T:
        """Run ``check(browser)`` on the browser's loop and return its result."""
        return self.portal.call(check, self.browser)


@pytest.fixture(scope="session")
def browser() -> Iterator[BrowserSession]:
    """Headless Chromium; a missing binary is an error naming the fix, never a skip."""
    if shutil.which(CHROMIUM) is None:
        raise RuntimeError(f"{CHROMIUM} not found: run `apt-get install -y chromium`")
    with start_blocking_portal("asyncio") as portal:
        manager = async_playwright()
        playwright = portal.call(manager.__aenter__)
        try:
            chromium = portal.call(
                lambda: playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            )
            try:
                yield BrowserSession(portal, chromium)
            finally:
                portal.call(chromium.close)
        finally:
            portal.call(manager.__aexit__, None, None, None)


def png_data(png: bytes) -> tuple[bytes, bytes]:
    """The IHDR chunk and the decompressed (still filtered) image data of a PNG."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, body = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        header = body if kind == b"IHDR" else header
        idat += body if kind == b"IDAT" else b""
        pos += 12 + length
    return header, zlib.decompress(idat)


def png_pixels(png: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and rows of RGB(A) pixels of an 8-bit, non-interlaced PNG (what
    Chromium writes), so screenshots can be checked without an imaging library."""
    header, raw = png_data(png)
    width, height, depth, colour = struct.unpack(">IIBB", header[:10])
    assert depth == 8, f"unsupported PNG bit depth {depth}"
    assert colour in (2, 6), f"unsupported PNG colour type {colour}"
    step = 3 if colour == 2 else 4
    stride = width * step
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        kind, line = (
            raw[y * (stride + 1)],
            bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]),
        )
        for i in range(stride):
            a = line[i - step] if i >= step else 0
            b, c = prev[i], prev[i - step] if i >= step else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pred) & 0xFF
        rows.append(bytes(line[j] for k in range(0, stride, step) for j in range(k, k + 3)))
        prev = line
    return width, height, rows
