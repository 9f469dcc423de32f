"""What the bridge tests share: a filled SQLite event store, and a bridge in a child
process that the tests kill between a sink's acknowledgement and the cursor write."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio

from pirn_like.capabilities.events import EventKind, SQLiteEventStore

CHILD = Path(__file__).with_name("_bridge_child.py")


async def filled_store(path: Path, count: int) -> list[str]:
    """Append ``count`` events (two entities' worth of versions, alternating) to a new
    SQLite store at ``path``; return their idempotency keys in ``seq`` order."""
    keys: list[str] = []
    async with SQLiteEventStore(path) as store:
        for i in range(count):
            entity, version = f"e{i % 2}", i // 2 + 1
            kind = EventKind.CREATED if version == 1 else EventKind.UPDATED
            event = await store.append(
                "order", entity, kind, {"n": i}, expected_version=version - 1
            )
            keys.append(event.key)
    return keys


def _child(args: list[str], mode: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen(
        [sys.executable, str(CHILD), *args, mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _read_line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        assert proc.stderr is not None
        raise AssertionError(f"the bridge child exited early: {proc.wait()}\n{proc.stderr.read()}")
    return line.strip()


async def kill_after_acks(args: list[str], acks: int) -> list[int]:
    """Run the child bridge, let the cursor follow ``acks - 1`` acknowledged batches,
    and SIGKILL it once the sink acknowledged batch ``acks`` (before its cursor write).
    Returns the last ``seq`` of each acknowledged batch."""
    proc = _child(args, "step")
    acked: list[int] = []
    try:
        with anyio.fail_after(60):
            while len(acked) < acks:
                line = await anyio.to_thread.run_sync(_read_line, proc)
                assert line.startswith("acked "), line
                acked.append(int(line.split()[1]))
                if len(acked) < acks:
                    assert proc.stdin is not None
                    proc.stdin.write("go\n")
                    proc.stdin.flush()
    finally:
        proc.send_signal(signal.SIGKILL)
        await anyio.to_thread.run_sync(proc.wait)
    return acked


async def run_to_end(args: list[str]) -> int:
    """Run the child bridge until it has pushed everything; the final cursor."""
    proc = _child(args, "run")
    with anyio.fail_after(60):
        out, err = await anyio.to_thread.run_sync(proc.communicate)
    assert proc.returncode == 0, err
    return int(out.split()[-1])
