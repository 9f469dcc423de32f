"""A watched directory drives a file flow: a new file runs the flow, its mirror appears."""

from __future__ import annotations

from pathlib import Path

import pytest
from _serving import serving

from pirn_like import KnotConfig, Parameter, Tapestry
from pirn_like.capabilities.files import Collect, FileRef, Mirror, MirrorResult
from pirn_like.triggers import FileWatchTrigger

pytestmark = pytest.mark.anyio


def shout(file: FileRef) -> str:
    return file.read_text().upper()


async def test_a_new_file_is_mirrored_by_the_run_it_triggers(tmp_path: Path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    (src / "a.txt").write_text("first")
    with Tapestry() as t:
        Parameter("path", str)  # the changed file: recorded with the run, the flow looks at all
        files = Collect(root=str(src), include="*.txt", _config=KnotConfig(id="collect"))
        Mirror(files=files, to=out, transform=shout, suffix=".up", _config=KnotConfig(id="mirror"))
    trigger = FileWatchTrigger(src, "*.txt", debounce=0.05, existing=True)
    async with t, serving(trigger, t) as outcomes:
        await outcomes.wait_for(1)  # a.txt was there: the watcher is up
        (src / "notes.md").write_text("not watched")
        (src / "sub").mkdir()
        (src / "sub" / "b.txt").write_text("second")
        seen = await outcomes.wait_for(2)
        record = await t.history.get_run(seen[1].run_id)
    assert [o.status for o in seen] == ["succeeded", "succeeded"]
    first, second = outcomes.outputs("mirror")
    assert isinstance(first, MirrorResult)
    assert isinstance(second, MirrorResult)
    assert first.written == ("a.up",)
    assert second.written == ("sub/b.up",)  # a.up was current: left alone
    assert (out / "sub" / "b.up").read_text() == "SECOND"
    assert record is not None
    assert record.trigger is not None
    assert record.trigger["path"] == str(src / "sub" / "b.txt")
