"""FileTailSource follows a real file: appends, partial lines, rotation, truncation."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from pirn_like import ClosedResourceError, KnotConfig, Parameter, RunResult, Tapestry, knot
from pirn_like.protocols import StreamItem as Item
from pirn_like.streaming import FileTailSource, run_stream

pytestmark = pytest.mark.anyio

POLL = 0.01


def append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8", newline="") as f:
        f.write(text)


@asynccontextmanager
async def tailing(path: Path, *args: Any, **kwargs: Any) -> AsyncIterator[AsyncIterator[Item]]:
    """The items of an open ``FileTailSource(path, ...)``, closed at the end."""
    async with FileTailSource(path, *args, poll_interval=POLL, **kwargs) as source:
        items = source.items()
        try:
            yield items
        finally:
            await items.aclose()  # type: ignore[attr-defined]


async def next_lines(items: AsyncIterator[Item], n: int) -> list[str]:
    """The next ``n`` lines the source delivers (their values)."""
    lines: list[str] = []
    with anyio.fail_after(10):
        while len(lines) < n:
            lines.append(str((await anext(items)).value))
    return lines


async def test_follows_appends_from_the_end_and_holds_a_partial_line(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_text("old 1\nold 2\n")
    async with tailing(path) as items:
        append(path, "new 1\nnew ")
        assert await next_lines(items, 1) == ["new 1"]
        append(path, "2\r\nnew 3\n")  # the held part completes; CRLF endings are stripped
        assert await next_lines(items, 2) == ["new 2", "new 3"]


async def test_from_start_reads_what_is_there_and_positions_name_file_and_offset(
    tmp_path: Path,
) -> None:
    path = tmp_path / "app.log"
    path.write_text("a\nbb\n")
    async with tailing(path, from_start=True) as items:
        with anyio.fail_after(10):
            first, second = await anext(items), await anext(items)
    inode = path.stat().st_ino
    assert (first.value, first.position) == ("a", f"{path}:{inode}:0")
    assert (second.value, second.position) == ("bb", f"{path}:{inode}:2")


async def test_a_file_created_later_is_read_from_its_start(tmp_path: Path) -> None:
    path = tmp_path / "later.log"
    async with tailing(path) as items:
        path.write_text("first\n")
        assert await next_lines(items, 1) == ["first"]


async def test_survives_rotation_finishing_the_old_file_first(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_text("")
    async with tailing(path) as items:
        append(path, "before 1\n")
        assert await next_lines(items, 1) == ["before 1"]
        # logrotate: rename; the writer finishes its old file; a new file appears.
        rotated = tmp_path / "app.log.1"
        path.rename(rotated)
        append(rotated, "before 2\n")
        assert await next_lines(items, 1) == ["before 2"]  # no new file yet: old one followed
        append(rotated, "no newline")
        path.write_text("after 1\nafter 2\n")
        assert path.stat().st_ino != rotated.stat().st_ino
        assert await next_lines(items, 3) == [
            "no newline",  # the old file is finished: its last line counts
            "after 1",
            "after 2",
        ]
        append(path, "after 3\n")  # and the new file is followed
        assert await next_lines(items, 1) == ["after 3"]


async def test_survives_truncation_reading_again_from_the_start(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_text("")
    async with tailing(path) as items:
        append(path, "a long line before truncation\n")
        assert await next_lines(items, 1) == ["a long line before truncation"]
        inode = path.stat().st_ino
        with path.open("r+") as f:  # copytruncate: the same file, cut to nothing
            f.truncate(0)
        assert path.stat().st_ino == inode
        append(path, "x\n")
        with anyio.fail_after(10):
            item = await anext(items)
        assert (item.value, item.position) == ("x", f"{path}:{inode}:0")


@knot
async def shout(line: str) -> str:
    return line.upper()


async def test_run_stream_runs_each_line_as_it_is_written(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_text("one\n")
    with Tapestry() as t:
        shout(line=Parameter("line", str), _config=KnotConfig(id="shout"))
    seen: list[str] = []
    stop = anyio.Event()
    source = FileTailSource(path, parameter_name="line", from_start=True, poll_interval=POLL)

    def handle(result: RunResult) -> None:
        seen.append(result.outputs["shout"])
        if len(seen) == 1:
            append(path, "two\n")  # written while the stream runs
        else:
            stop.set()

    with anyio.fail_after(10):
        summary = await run_stream(source, t, on_result=handle, stop=stop)
    assert seen == ["ONE", "TWO"]
    assert summary.succeeded == 2
    (record, *_) = await t.history.list_runs()
    assert record.trigger == {
        "kind": "file_tail",
        "source": str(path),
        "position": f"{path}:{os.stat(path).st_ino}:4",
    }


async def test_items_of_an_unopened_source_are_refused(tmp_path: Path) -> None:
    source = FileTailSource(tmp_path / "x.log")
    with pytest.raises(ClosedResourceError, match="is not open"):
        await anext(source.items())


def test_bad_settings_are_refused(tmp_path: Path) -> None:
    assert FileTailSource(tmp_path / "x.log", "row").parameter_name == "row"
    with pytest.raises(ValueError, match="poll_interval must be a positive number"):
        FileTailSource(tmp_path / "x.log", poll_interval=0)
    with pytest.raises(LookupError, match="no-such-codec"):
        FileTailSource(tmp_path / "x.log", encoding="no-such-codec")
