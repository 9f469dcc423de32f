"""FileWatchTrigger on real files: one run per settled change of a matching file."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest
from _serving import serving

from pirn_like import KnotConfig, Parameter, RunStatus, Tapestry, knot
from pirn_like.triggers import FileWatchTrigger

pytestmark = pytest.mark.anyio

FAST = 0.05  # debounce for the tests that are not about it


@knot
def load(path: str) -> str:
    return Path(path).read_text()


def _tapestry() -> Tapestry:
    with Tapestry() as t:
        load(path=Parameter("path", str), _config=KnotConfig(id="load"))
    return t


async def test_new_matching_files_run_with_their_path(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("a")
    trigger = FileWatchTrigger(tmp_path, "*.csv", debounce=FAST, existing=True)
    async with _tapestry() as t, serving(trigger, t) as out:
        # a.csv was there before: its run shows the watcher is up.
        await out.wait_for(1)
        (tmp_path / "notes.txt").write_text("ignored")
        (tmp_path / "sub").mkdir()
        (tmp_path / "sub" / "b.csv").write_text("b")  # subdirectories too, by default
        await out.wait_for(2)
        (tmp_path / "c.csv").write_text("c")
        outcomes = await out.wait_for(3)
        record = await t.history.get_run(outcomes[1].run_id)
    assert out.outputs("load") == ["a", "b", "c"]
    path = tmp_path / "sub" / "b.csv"
    assert outcomes[1].run_id.startswith("file-")
    assert record is not None
    assert record.trigger == {
        "kind": "file_watch",
        "source": str(tmp_path),
        "path": str(path),
        "mtime_ns": path.stat().st_mtime_ns,
        "size": 1,
    }


async def test_a_notification_without_new_content_is_a_duplicate(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("a")
    trigger = FileWatchTrigger(tmp_path, debounce=FAST, existing=True)
    async with _tapestry() as t, serving(trigger, t) as out:
        await out.wait_for(1)
        status = path.stat()
        os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns))  # notified, unchanged
        first, again = await out.wait_for(2)
        path.write_text("a, changed")  # new content: a new run
        await out.wait_for(3)
    assert (again.run_id, again.duplicate) == (first.run_id, True)
    assert out.outputs("load") == ["a", "a, changed"]


async def test_a_restart_catches_up_and_skips_what_already_ran(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("a")
    async with _tapestry() as t:
        async with serving(FileWatchTrigger(tmp_path, debounce=FAST, existing=True), t) as out:
            await out.wait_for(1)
        (tmp_path / "b.csv").write_text("b")  # arrives while nothing watches
        async with serving(FileWatchTrigger(tmp_path, debounce=FAST, existing=True), t) as out:
            outcomes = await out.wait_for(2)
    assert sorted((o.duplicate, o.status) for o in outcomes) == [
        (False, RunStatus.SUCCEEDED),
        (True, RunStatus.SUCCEEDED),
    ]
    assert out.outputs("load") == ["b"]


async def test_a_file_written_bit_by_bit_runs_once_it_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "ready.csv").write_text("ready")
    trigger = FileWatchTrigger(tmp_path, debounce=0.5, existing=True)
    big = tmp_path / "big.csv"
    path = str(big)

    async def noticed() -> float:
        """Wait until the trigger has seen the last write; when it would run the file."""
        settling = trigger._settling  # pyright: ignore[reportPrivateUsage]
        with anyio.fail_after(10):
            while (due := settling.get(path)) is None:  # noqa: ASYNC110 - it has no event
                await anyio.sleep(0.01)
        return due

    async with _tapestry() as t, serving(trigger, t) as out:
        await out.wait_for(1)
        big.write_text("part 1;")
        first_due = await noticed()
        with big.open("a") as f:
            f.write("part 2")
        with anyio.fail_after(10):
            while await noticed() == first_due:  # noqa: ASYNC110 - the 2nd write moves it
                await anyio.sleep(0.01)
        await out.wait_for(2)
        (tmp_path / "last.csv").write_text("last")
        await out.wait_for(3)
    assert out.outputs("load") == ["ready", "part 1;part 2", "last"]


async def test_without_recursion_subdirectories_are_not_watched(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deep.csv").write_text("deep")
    (tmp_path / "top.csv").write_text("top")
    trigger = FileWatchTrigger(tmp_path, debounce=FAST, recursive=False, existing=True)
    async with _tapestry() as t, serving(trigger, t) as out:
        await out.wait_for(1)
        (tmp_path / "sub" / "deeper.csv").write_text("deeper")
        (tmp_path / "next.csv").write_text("next")
        await out.wait_for(2)
    assert out.outputs("load") == ["top", "next"]


async def test_a_missing_directory_is_refused_on_open(tmp_path: Path) -> None:
    trigger = FileWatchTrigger(tmp_path / "nowhere")
    with pytest.raises(NotADirectoryError, match="nowhere"):
        await trigger.__aenter__()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"debounce": -1}, "debounce must be"),
        ({"pattern": ""}, "needs a glob pattern"),
        ({"parameter_name": ""}, "parameter_name"),
    ],
)
def test_bad_settings_are_refused(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FileWatchTrigger(tmp_path, **kwargs)  # type: ignore[arg-type]
