"""Drive the measurements: one child process per (implementation, workload), import times."""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["IMPLEMENTATIONS", "Measurement", "import_ms", "measure", "write_section"]

BENCH = Path(__file__).resolve().parent
REPO_ROOT = BENCH.parent
IMPLEMENTATIONS = ("asyncio", "pirn_like", "pirn")
IMPORTS = {"asyncio": "import asyncio", "pirn_like": "import pirn_like", "pirn": "import pirn"}
STATELESS_RUNS = {"asyncio"}
"""Implementations whose 1st and 2nd runs do the same work (no plan or cache to reuse)."""


@dataclass(slots=True)
class Measurement:
    """Every timed phase of one implementation on one workload (seconds)."""

    impl: str
    workload: str
    nodes: int
    phases: dict[str, list[float]] = field(default_factory=dict[str, list[float]])
    status: str = "ok"
    """``ok``, ``timed out ...`` or ``error: ...``."""
    version: str = ""
    rss_after_import: int | None = None
    peak_rss: int | None = None
    """Peak RSS of the process by the end of the first build + 1st run + 2nd run."""

    def best(self, phase: str) -> float | None:
        """The fastest repeat of ``phase`` (min: the least disturbed by noise).

        Where both runs do the same work, the fastest of either run counts for both.
        """
        times = list(self.phases.get(phase, ()))
        if phase in ("run1", "run2") and self.impl in STATELESS_RUNS and times:
            times += self.phases.get("run2" if phase == "run1" else "run1", [])
        return min(times) if times else None

    @property
    def repeats(self) -> int:
        return len(self.phases.get("run2", ()))


def child_env() -> dict[str, str]:
    """The environment children run in: this source tree first on the import path."""
    env = dict(os.environ)
    paths = [str(REPO_ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def _lines(stream: object, into: queue.Queue[str | None]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        into.put(line)
    into.put(None)


def measure(
    impl: str, workload: str, nodes: int, *, repeats: int, budget: float, cap: float
) -> Measurement:
    """Run ``bench/child.py`` and collect its phases; no phase may take over ``cap`` s."""
    m = Measurement(impl=impl, workload=workload, nodes=nodes)
    cmd = [sys.executable, str(BENCH / "child.py"), impl, workload]
    cmd += ["--repeats", str(repeats), "--budget", str(budget)]
    with tempfile.TemporaryFile("w+") as stderr:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=stderr, text=True, env=child_env(), cwd=REPO_ROOT
        )
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_lines, args=(proc.stdout, lines), daemon=True).start()
        while True:
            try:
                line = lines.get(timeout=cap)
            except queue.Empty:
                proc.kill()
                m.status = f"timed out (> {cap:g} s)"
                break
            if line is None:
                break
            event = json.loads(line)
            if event["event"] == "phase":
                m.phases.setdefault(event["phase"], []).append(event["seconds"])
            elif event["event"] == "ready":
                m.version = event["version"]
                m.rss_after_import = event["rss_after_import"]
            elif event["event"] == "repeat" and m.peak_rss is None:
                m.peak_rss = event["peak_rss"]  # the first repeat's: no leftovers of others
        proc.wait()
        if proc.returncode and m.status == "ok":
            stderr.seek(0)
            tail = stderr.read().strip().splitlines()
            m.status = f"error: {tail[-1] if tail else f'exit code {proc.returncode}'}"
    return m


def _import_env(pycache: str) -> dict[str, str]:
    """Bytecode caching on, as for an installed package, but outside the source tree."""
    env = child_env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = pycache
    return env


def _seconds(code: str, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=REPO_ROOT, timeout=120)
    return time.perf_counter() - t0


def import_ms(impl: str, runs: int) -> float:
    """``python -c "import X"`` minus ``python -c "pass"``, best of ``runs`` each, in ms.

    Both are run once first, so the modules' bytecode is cached (in a temporary
    directory) before timing, as it would be for an installed package.
    """
    stmt = IMPORTS[impl]
    with tempfile.TemporaryDirectory(prefix="pirn-bench-pycache-") as pycache:
        env = _import_env(pycache)
        _seconds("pass", env)
        _seconds(stmt, env)
        base: list[float] = []
        timed: list[float] = []
        for _ in range(runs):
            base.append(_seconds("pass", env))
            timed.append(_seconds(stmt, env))
    return (min(timed) - min(base)) * 1000


def write_section(doc: Path, start: str, end: str, lines: list[str]) -> None:
    """Put ``lines`` (which begin with ``start`` and end with ``end``) into ``doc``: in
    place of the section between those markers, or at the end the first time."""
    text = doc.read_text()
    section = "\n".join(lines)
    if start in text:
        pattern = f"{re.escape(start)}.*?{re.escape(end)}"
        text = re.sub(pattern, lambda _: section, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    doc.write_text(text)
