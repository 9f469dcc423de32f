"""Several processes recording into one SQLite file at the same time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

from pirn_like import RunStatus
from pirn_like.backends._sqlite_history import SQLiteHistory

pytestmark = pytest.mark.anyio

WORKERS = 3
RUNS = 4
BATCHES = 25
BATCH_SIZE = 40

# Each worker says "ready", waits for "go" (so all of them open the fresh file and
# write at the same time), then records its runs and lineage batches.
WORKER = """
import sys
from datetime import UTC, datetime

import anyio

from pirn_like import KnotLineage, Outcome, RunRecord, RunStatus
from pirn_like.backends._sqlite_history import SQLiteHistory

path, worker, runs, batches, size = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])


def record(run_id, n):
    now = datetime.now(UTC)
    return KnotLineage(
        run_id, f"k{n}", "worker.Knot", "sha256:config", {"x": "sha256:shared"}, {"x": "src"},
        f"sha256:{run_id}-{n}", Outcome.OK, None, None, None, "LocalDispatcher", now, now, 1,
        "0",
    )


async def main():
    print("ready", flush=True)
    sys.stdin.readline()
    async with SQLiteHistory(path) as history:
        for r in range(runs):
            run_id = f"w{worker}-r{r}"
            started = datetime.now(UTC)
            run = RunRecord(run_id=run_id, status=RunStatus.RUNNING, started_at=started)
            await history.record_run_started(run)
            for b in range(batches):
                await history.record_lineage(
                    [record(run_id, b * size + i) for i in range(size)]
                )
            await history.record_run_finished(
                run.model_copy(update={"status": RunStatus.SUCCEEDED})
            )


anyio.run(main)
"""


@pytest.fixture
def anyio_backend() -> str:
    """aiosqlite runs on asyncio only."""
    return "asyncio"


async def _ready(process: Process) -> None:
    assert process.stdout is not None
    line = await BufferedByteReceiveStream(process.stdout).receive_until(b"\n", 100)
    assert line == b"ready"


async def test_processes_write_one_file_at_once(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    logs = [tmp_path / f"worker-{w}.log" for w in range(WORKERS)]
    processes: list[Process] = []
    try:
        for w, log in enumerate(logs):
            argv = [sys.executable, "-c", WORKER, str(path), str(w)]
            argv += [str(RUNS), str(BATCHES), str(BATCH_SIZE)]
            with log.open("wb") as stderr:
                processes.append(
                    await anyio.open_process(
                        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr
                    )
                )
        with anyio.fail_after(60):
            for process in processes:
                await _ready(process)
            for process in processes:
                assert process.stdin is not None
                await process.stdin.send(b"go\n")
            for process in processes:
                await process.wait()
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
            await process.aclose()
    for process, log in zip(processes, logs, strict=True):
        assert process.returncode == 0, log.read_text()
        assert "locked" not in log.read_text()

    async with SQLiteHistory(path) as history:
        runs = await history.list_runs(limit=1000)
        assert len(runs) == WORKERS * RUNS
        assert {run.status for run in runs} == {RunStatus.SUCCEEDED}
        for run in runs:
            lineage = await history.get_lineage(run.run_id)
            assert [rec.knot_id for rec in lineage] == [
                f"k{n}" for n in range(BATCHES * BATCH_SIZE)
            ]
        total = WORKERS * RUNS * BATCHES * BATCH_SIZE
        assert len(await history.query_lineage_by_input_hash("sha256:shared")) == total


UNCLOSED = """
import asyncio
import sys

from pirn_like import KnotConfig, Parameter, RunRequest, Tapestry, knot


@knot
async def echo(x: int) -> int:
    return x


t = Tapestry(history="sqlite:///" + sys.argv[1])
with t:
    echo(x=Parameter("x", int, default=1), _config=KnotConfig(id="echo"))
print(asyncio.run(t.run(RunRequest())).status.value, flush=True)
"""


def test_a_script_that_never_closes_its_history_still_exits(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", UNCLOSED, str(tmp_path / "runs.db")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout.strip()) == (0, "succeeded"), done.stderr
