"""A run killed with SIGKILL mid-way resumes in a new process: every finished knot
executed exactly once overall, no lineage row lost or duplicated, same outputs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.streams.text import TextReceiveStream

from pirn_like.backends._sqlite_history import SQLiteHistory

pytestmark = pytest.mark.anyio

CHILD = Path(__file__).with_name("_crash_child.py")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _urls(root: Path) -> tuple[str, str, Path]:
    effects = root / "effects"
    effects.mkdir(parents=True)
    return f"sqlite:///{root / 'runs.db'}", f"file://{root / 'values'}", effects


async def _finish(*args: str) -> dict[str, Any]:
    done = await anyio.run_process([sys.executable, str(CHILD), *args], check=False)
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout.decode().strip().splitlines()[-1])


def _executions(effects: Path) -> Counter[str]:
    return Counter(p.name.split(".", 1)[0] for p in effects.iterdir())


async def test_sigkill_mid_run_then_resume_in_a_new_process(tmp_path: Path) -> None:
    history_url, data_url, effects = _urls(tmp_path / "crash")
    run_id = "run-crash"
    process = await anyio.open_process(
        [sys.executable, str(CHILD), history_url, data_url, str(effects), run_id, "hang"],
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        with anyio.fail_after(60):
            async for line in TextReceiveStream(process.stdout):
                if "gate" in line:
                    break
    finally:
        process.send_signal(signal.SIGKILL)
        await process.wait()
    assert process.returncode == -signal.SIGKILL
    # Before the gate started, every knot upstream of it was checkpointed.
    async with SQLiteHistory(tmp_path / "crash" / "runs.db") as history:
        before = Counter(r.knot_id for r in await history.get_lineage(run_id))
    assert before == Counter({"param:n": 1, **{f"w{k}": 1 for k in range(6)}})

    resumed = await _finish(history_url, data_url, str(effects), run_id, "resume")

    baseline_urls = _urls(tmp_path / "baseline")
    baseline = await _finish(*map(str, baseline_urls), "run-baseline", "run")
    assert resumed == baseline
    assert resumed["status"] == "succeeded"
    # Finished knots ran once overall; the gate ran twice (killed inside, then again).
    assert _executions(effects) == Counter(
        {**{f"w{k}": 1 for k in range(6)}, "gate": 2, "after": 1}
    )
    async with SQLiteHistory(tmp_path / "crash" / "runs.db") as history:
        rows = Counter(r.knot_id for r in await history.get_lineage(run_id))
        record = await history.get_run(run_id)
    assert rows == Counter({"param:n": 1, **{f"w{k}": 1 for k in range(6)}, "gate": 1, "after": 1})
    assert record is not None
    assert record.status.value == "succeeded"
