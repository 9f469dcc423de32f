"""File flows: collect CSV files, total each one once, mirror them as JSON, and follow
an output file's lineage back to the input file it was made from.

    python examples/file_flows.py [DIRECTORY]

Without a directory it works in a fresh temporary one. The run history (the ledger
that tells which files were already processed) is a SQLite file in that directory,
so running the script twice on one directory processes nothing the second time.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path

from pirn_like import KnotConfig, RunRequest, Tapestry, content_hash
from pirn_like.capabilities.files import (
    Collect,
    FileRef,
    FileSet,
    MapFiles,
    MapFilesResult,
    Mirror,
    MirrorResult,
)


def total(file: FileRef) -> int:
    """The sum of the ``amount`` column of one CSV file."""
    _, *rows = file.read_text().splitlines()
    return sum(int(row.split(",")[1]) for row in rows)


def to_json(file: FileRef) -> str:
    """One CSV file as a JSON list of rows."""
    header, *rows = file.read_text().splitlines()
    names = header.split(",")
    return json.dumps([dict(zip(names, row.split(","), strict=True)) for row in rows])


def build(workdir: Path) -> Tapestry:
    with Tapestry(history=f"sqlite:///{workdir / 'runs.db'}") as t:
        files = Collect(
            root=str(workdir / "inbox"), include="*.csv", _config=KnotConfig(id="collect")
        )
        MapFiles(files=files, each=total, ledger=t.history, _config=KnotConfig(id="totals"))
        Mirror(
            files=files,
            to=workdir / "outbox",
            transform=to_json,
            suffix=".json",
            _config=KnotConfig(id="mirror"),
        )
    return t


async def run(t: Tapestry) -> tuple[FileSet, MapFilesResult, MirrorResult]:
    result = await t.run(RunRequest())
    if not result.succeeded:
        raise SystemExit(f"run failed: {result.exceptions}")
    return result.outputs["collect"], result.outputs["totals"], result.outputs["mirror"]


async def main(workdir: Path) -> None:
    inbox = workdir / "inbox"
    (inbox / "2024").mkdir(parents=True, exist_ok=True)
    if not (inbox / "a.csv").exists():
        (inbox / "a.csv").write_text("id,amount\n1,10\n2,5\n")
        (inbox / "2024" / "b.csv").write_text("id,amount\n3,7\n")
    async with build(workdir) as t:
        _, totals, mirror = await run(t)
        print("first run, totals:", totals.results, "skipped:", list(totals.skipped))
        print("first run, mirrored:", list(mirror.written))

        _, totals, mirror = await run(t)
        print("unchanged tree, totals:", totals.results, "mirrored:", list(mirror.written))

        (inbox / "c.csv").write_text("id,amount\n4,1\n5,2\n")
        (inbox / "2024" / "b.csv").unlink(missing_ok=True)
        files, totals, mirror = await run(t)
        print("after adding c.csv and deleting b.csv, totals:", totals.results)
        print("mirrored:", list(mirror.written), "removed:", list(mirror.removed))

        # Lineage: which execution made outbox/c.json, and from which version of c.csv?
        source = next(f for f in files.files if f.path == "c.csv")
        output = next(m for m in mirror.files if m.path == "c.json")
        path = await t.history.lineage_path(content_hash(source), content_hash(output))
        print(f"c.json was made by {path[0].knot_id} from c.csv sha256 {source.sha256[:12]}")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        asyncio.run(main(Path(sys.argv[1])))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(main(Path(tmp)))
