"""File flows on real temporary trees: Collect, MapFiles (the run history as ledger), Mirror."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pirn_like import KnotConfig, Parameter, RunRequest, RunResult, Tapestry, content_hash
from pirn_like._errors import WiringError
from pirn_like.capabilities.files import (
    Collect,
    FileRef,
    FileSet,
    MapFiles,
    MapFilesResult,
    Mirror,
    MirroredFile,
    MirrorResult,
)

pytestmark = pytest.mark.anyio


def _tree(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def _collect_only(**options: object) -> Tapestry:
    with Tapestry() as t:
        Collect(root=Parameter("root", str), _config=KnotConfig(id="collect"), **options)  # type: ignore[arg-type]
    return t


async def _collect(t: Tapestry, root: Path) -> FileSet:
    result = await t.run(RunRequest(parameters={"root": str(root)}))
    assert result.succeeded, result.exceptions
    files = result.outputs["collect"]
    assert isinstance(files, FileSet)
    return files


# -- Collect -------------------------------------------------------------------------


async def test_collect_finds_matching_files_in_path_order_with_their_content_hash(
    tmp_path: Path,
) -> None:
    _tree(
        tmp_path,
        {"b.csv": "b", "a.csv": "alpha", "raw/x/c.csv": "c", "raw/d.json": "{}", "notes.txt": "n"},
    )
    async with _collect_only(include=["*.csv", "raw/**/*.json"], exclude="raw/x/*") as t:
        files = await _collect(t, tmp_path)
    assert files.paths == ["a.csv", "b.csv", "raw/d.json"]
    first = files.files[0]
    assert first.root == tmp_path.as_posix()
    assert (first.size, first.sha256) == (5, hashlib.sha256(b"alpha").hexdigest())
    assert first.mtime_ns == (tmp_path / "a.csv").stat().st_mtime_ns
    assert first.read_text() == "alpha"


async def test_an_unchanged_tree_hashes_the_same_and_a_changed_file_does_not(
    tmp_path: Path,
) -> None:
    _tree(tmp_path, {"a.txt": "a", "sub/b.txt": "b"})
    async with _collect_only() as t:
        before = await _collect(t, tmp_path)
        status = (tmp_path / "a.txt").stat()
        # Touched, not changed: the modification time is not part of the value.
        os.utime(tmp_path / "a.txt", ns=(status.st_atime_ns, status.st_mtime_ns + 10**9))
        touched = await _collect(t, tmp_path)
        (tmp_path / "sub/b.txt").write_text("B")
        changed = await _collect(t, tmp_path)
    assert touched.files[0].mtime_ns != before.files[0].mtime_ns
    assert content_hash(touched) == content_hash(before)
    assert content_hash(changed) != content_hash(before)
    assert content_hash(changed.files[0]) == content_hash(before.files[0])


async def test_collect_needs_a_directory(tmp_path: Path) -> None:
    async with _collect_only() as t:
        result = await t.run(RunRequest(parameters={"root": str(tmp_path / "missing")}))
    assert not result.succeeded
    assert "is not a directory" in result.exceptions[0].message
    assert str(tmp_path / "missing") in result.exceptions[0].message


def test_bad_patterns_are_refused_when_the_tapestry_is_built() -> None:
    with pytest.raises(WiringError, match="must be relative and use '/'"):
        Collect(root="/data", include="/abs/*.csv", _config=KnotConfig(id="c"))
    with pytest.raises(WiringError, match="include needs at least one pattern"):
        Collect(root="/data", include=[], _config=KnotConfig(id="c"))


# -- MapFiles: the run history is the ledger ---------------------------------------


class Broken:
    """Files (by name) the per-file functions fail on, while they are listed here."""

    names: set[str] = set()  # noqa: RUF012 - shared with the module-level functions


@pytest.fixture
def broken() -> Iterator[set[str]]:
    """The names the per-file functions fail on; emptied after the test."""
    yield Broken.names
    Broken.names.clear()


def measure(file: FileRef) -> int:
    if file.path in Broken.names:
        raise ValueError(f"cannot read {file.path}")
    return len(file.read_text())


def _map_flow(history: str | None = None) -> Tapestry:
    t = Tapestry(history=history) if history else Tapestry()
    with t:
        files = Collect(root=Parameter("root", str), _config=KnotConfig(id="collect"))
        MapFiles(files=files, each=measure, ledger=t.history, _config=KnotConfig(id="measure"))
    return t


async def _map(t: Tapestry, root: Path) -> tuple[RunResult, MapFilesResult | None]:
    result = await t.run(RunRequest(parameters={"root": str(root)}))
    out = result.outputs.get("measure")
    assert out is None or isinstance(out, MapFilesResult)
    return result, out


async def test_files_already_processed_are_skipped_and_a_changed_one_runs_again(
    tmp_path: Path,
) -> None:
    _tree(tmp_path, {"a.txt": "a", "b.txt": "bb", "sub/c.txt": "ccc"})
    async with _map_flow() as t:
        _, first = await _map(t, tmp_path)
        _, again = await _map(t, tmp_path)
        (tmp_path / "b.txt").write_text("bbbb")
        (tmp_path / "d.txt").write_text("dddd d")
        changed_run, changed = await _map(t, tmp_path)
    assert first is not None
    assert again is not None
    assert changed is not None
    assert first.results == {"a.txt": 1, "b.txt": 2, "sub/c.txt": 3}
    assert (again.results, again.skipped) == ({}, ("a.txt", "b.txt", "sub/c.txt"))
    assert changed.results == {"b.txt": 4, "d.txt": 6}
    assert changed.skipped == ("a.txt", "sub/c.txt")
    ran = {r.knot_id for r in changed_run.lineage if r.knot_id.startswith("measure[")}
    assert ran == {"measure[b.txt]", "measure[d.txt]"}


async def test_a_failed_file_is_retried_by_the_next_run(tmp_path: Path, broken: set[str]) -> None:
    _tree(tmp_path, {"a.txt": "a", "bad.txt": "xx"})
    broken.add("bad.txt")
    async with _map_flow() as t:
        failed, _ = await _map(t, tmp_path)
        broken.clear()
        _, retried = await _map(t, tmp_path)
    assert not failed.succeeded
    assert "measure[bad.txt] err (ValueError: cannot read bad.txt)" in failed.exceptions[0].message
    assert retried is not None
    assert (retried.results, retried.skipped) == ({"bad.txt": 2}, ("a.txt",))


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # the SQLite history uses aiosqlite
async def test_the_ledger_survives_a_restart_in_a_durable_history(tmp_path: Path) -> None:
    src = _tree(tmp_path / "in", {"a.txt": "a", "b.txt": "b"})
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    async with _map_flow(url) as t:
        _, first = await _map(t, src)
    (src / "a.txt").write_text("changed")
    async with _map_flow(url) as t:  # a new process, as far as the ledger can tell
        _, second = await _map(t, src)
    assert first is not None
    assert second is not None
    assert (second.results, second.skipped) == ({"a.txt": 7}, ("b.txt",))


def scaled(file: FileRef, factor: int) -> int:
    return len(file.read_text()) * factor


async def test_changing_a_shared_input_processes_every_file_again(tmp_path: Path) -> None:
    _tree(tmp_path, {"a.txt": "a", "b.txt": "bb"})
    with Tapestry() as t:
        files = Collect(root=str(tmp_path), _config=KnotConfig(id="collect"))
        factor = Parameter("factor", int)
        MapFiles(
            files=files, each=scaled, ledger=t.history, factor=factor, _config=KnotConfig(id="m")
        )
    async with t:
        runs = [await t.run(RunRequest(parameters={"factor": f})) for f in (2, 2, 3)]
    outputs = [r.outputs["m"] for r in runs]
    assert [o.results for o in outputs] == [{"a.txt": 2, "b.txt": 4}, {}, {"a.txt": 3, "b.txt": 6}]


def test_map_files_wiring_is_checked() -> None:
    with pytest.raises(WiringError, match="'files' must be a knot"):
        MapFiles(files="/data", each=measure, ledger=Tapestry().history, _config=KnotConfig(id="m"))
    with pytest.raises(WiringError, match="ledger must be a RunHistory"):
        MapFiles(
            files=Collect(root="/d", _config=KnotConfig(id="c")),
            each=measure,
            ledger=object(),  # type: ignore[arg-type]
            _config=KnotConfig(id="m"),
        )


# -- Mirror ---------------------------------------------------------------------------


def shout(file: FileRef) -> str:
    if file.path in Broken.names:
        raise ValueError(f"cannot shout {file.path}")
    return file.read_text().upper()


async def whisper(file: FileRef) -> bytes:
    return file.read_bytes().lower()


def _mirror_flow(out: Path, **options: object) -> Tapestry:
    options.setdefault("transform", shout)
    with Tapestry() as t:
        files = Collect(root=Parameter("root", str), include="*.txt", _config=KnotConfig(id="c"))
        Mirror(files=files, to=out, _config=KnotConfig(id="mirror"), **options)  # type: ignore[arg-type]
    return t


async def _mirror(t: Tapestry, src: Path) -> tuple[RunResult, MirrorResult]:
    result = await t.run(RunRequest(parameters={"root": str(src)}))
    assert result.succeeded, result.exceptions
    out = result.outputs["mirror"]
    assert isinstance(out, MirrorResult)
    return result, out


def _listing(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in root.rglob("*") if p.is_file()}


async def test_mirror_follows_the_input_tree(tmp_path: Path) -> None:
    src = _tree(tmp_path / "in", {"a.txt": "a", "sub/b.txt": "b", "sub/deep/c.txt": "c"})
    out = tmp_path / "out"
    async with _mirror_flow(out, suffix=".md") as t:
        _, first = await _mirror(t, src)
        _, again = await _mirror(t, src)
        (src / "a.txt").write_text("a2")
        (src / "sub/deep/c.txt").unlink()
        (src / "sub/deep").rmdir()
        _, changed = await _mirror(t, src)
    assert first.written == ("a.md", "sub/b.md", "sub/deep/c.md")
    assert (again.written, again.removed) == ((), ())
    assert again.files == first.files
    assert (changed.written, changed.removed) == (("a.md",), ("sub/deep/c.md",))
    files = _listing(out)
    assert files.pop(".pirn-mirror.json")
    assert files == {"a.md": "A2", "sub/b.md": "B"}
    assert not (out / "sub/deep").exists()
    assert [(m.path, m.source) for m in changed.files] == [
        ("a.md", "a.txt"),
        ("sub/b.md", "sub/b.txt"),
    ]
    assert changed.files[0].sha256 == hashlib.sha256(b"A2").hexdigest()


async def test_mirror_never_touches_files_it_did_not_write(tmp_path: Path) -> None:
    src = _tree(tmp_path / "in", {"a.txt": "a"})
    out = _tree(tmp_path / "out", {"mine.txt": "keep me", "b.txt": "not yours"})
    async with _mirror_flow(out) as t:
        _, first = await _mirror(t, src)
        (src / "b.txt").write_text("b")  # would be mirrored onto a file it did not write
        clash = await t.run(RunRequest(parameters={"root": str(src)}))
        (out / "b.txt").unlink()
        (src / "a.txt").unlink()
        _, last = await _mirror(t, src)
    assert first.written == ("a.txt",)
    assert not clash.succeeded
    message = clash.exceptions[0].message
    assert "was not written by this mirror" in message
    assert str(out / "b.txt") in message
    assert clash.exceptions[0].type.endswith("MirrorConflictError")
    assert (last.written, last.removed) == (("b.txt",), ("a.txt",))
    files = _listing(out)
    del files[".pirn-mirror.json"]
    assert files == {"mine.txt": "keep me", "b.txt": "B"}


async def test_an_output_edited_by_hand_is_written_again(tmp_path: Path) -> None:
    src = _tree(tmp_path / "in", {"a.txt": "a", "b.txt": "b"})
    out = tmp_path / "out"
    async with _mirror_flow(out, transform=whisper, rename=lambda p: f"low/{p}") as t:
        await _mirror(t, _tree(src, {"a.txt": "AbC"}))
        (out / "low/a.txt").write_text("edited")
        _, repaired = await _mirror(t, src)
    assert repaired.written == ("low/a.txt",)
    assert (out / "low/a.txt").read_text() == "abc"


async def test_a_new_transform_rewrites_every_output(tmp_path: Path) -> None:
    src = _tree(tmp_path / "in", {"a.txt": "Ab", "b.txt": "Cd"})
    out = tmp_path / "out"
    async with _mirror_flow(out) as t:
        await _mirror(t, src)
    async with _mirror_flow(out, transform=whisper) as t:
        _, rewritten = await _mirror(t, src)
    assert rewritten.written == ("a.txt", "b.txt")
    assert (out / "a.txt").read_text() == "ab"


async def test_a_failed_transform_leaves_the_others_written_and_is_retried(
    tmp_path: Path, broken: set[str]
) -> None:
    src = _tree(tmp_path / "in", {"a.txt": "a", "bad.txt": "b"})
    out = tmp_path / "out"
    broken.add("bad.txt")
    async with _mirror_flow(out) as t:
        failed = await t.run(RunRequest(parameters={"root": str(src)}))
        broken.clear()
        _, retried = await _mirror(t, src)
    assert not failed.succeeded
    assert "mirror[bad.txt] err (ValueError: cannot shout bad.txt)" in failed.exceptions[0].message
    assert retried.written == ("bad.txt",)  # a.txt stayed written and owned
    assert sorted(os.listdir(out)) == [".pirn-mirror.json", "a.txt", "bad.txt"]  # no temp files


async def test_mirror_refuses_collisions_and_overlapping_trees(tmp_path: Path) -> None:
    src = _tree(tmp_path / "in", {"a.txt": "a", "b.txt": "b"})
    async with _mirror_flow(tmp_path / "out", rename=lambda p: "same.txt") as t:
        collision = await t.run(RunRequest(parameters={"root": str(src)}))
    async with _mirror_flow(src / "mirror") as t:
        inside = await t.run(RunRequest(parameters={"root": str(src)}))
    assert "'a.txt' and 'b.txt' both map to 'same.txt'" in collision.exceptions[0].message
    assert "overlap" in inside.exceptions[0].message
    assert not (tmp_path / "out").exists()
    assert not (src / "mirror").exists()


def test_mirror_settings_are_checked() -> None:
    files = Collect(root="/d", _config=KnotConfig(id="c"))
    with pytest.raises(WiringError, match="rename= or suffix=, not both"):
        Mirror(
            files=files,
            to="/o",
            transform=shout,
            suffix=".x",
            rename=str.upper,
            _config=KnotConfig(id="m"),
        )
    with pytest.raises(WiringError, match=r"suffix must start with '\.'"):
        Mirror(files=files, to="/o", transform=shout, suffix="x", _config=KnotConfig(id="m"))


# -- Lineage ------------------------------------------------------------------------


async def test_an_output_file_links_back_to_its_input_file(tmp_path: Path) -> None:
    src = _tree(tmp_path / "in", {"a.txt": "a", "b.txt": "b"})
    async with _mirror_flow(tmp_path / "out") as t:
        run, mirrored = await _mirror(t, src)
        collected = run.outputs["c"]
        source = next(f for f in collected.files if f.path == "a.txt")
        output = next(m for m in mirrored.files if m.source == "a.txt")
        assert isinstance(output, MirroredFile)
        graph = await t.history.provenance(content_hash(output))
        path = await t.history.lineage_path(content_hash(source), content_hash(output))
        whole = await t.history.provenance(content_hash(mirrored))
    # The output file was made by the mirror's item for a.txt, from a.txt's FileRef.
    assert [(r.knot_id, r.parent_input_hashes) for r in path] == [
        ("mirror[a.txt]", {"file": content_hash(source)})
    ]
    assert content_hash(source) in graph
    other = next(f for f in collected.files if f.path == "b.txt")
    assert content_hash(other) not in graph
    # The mirror as a whole comes from the collected FileSet, which comes from the root.
    upstream = {graph_node for graph_node in whole if whole.nodes[graph_node]["kind"] == "value"}
    assert {content_hash(collected), content_hash(str(src))} <= upstream
