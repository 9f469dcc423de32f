"""Benchmark pirn_like against plain asyncio and pirn-core on the same workloads.

    python bench/run.py            # full run; writes docs/performance.md
    python bench/run.py --quick    # smoke check: fewer repeats, no 100k fan-out

Every (framework, workload) pair runs in its own process (``bench/child.py``), so one
framework's heap never slows another and the 100k fan-out's peak RSS is its own.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shlex
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from measure import IMPLEMENTATIONS, REPO_ROOT, Measurement, import_ms, measure
from report import Report
from workloads import BIG, WORKLOADS

DOC = REPO_ROOT / "docs" / "performance.md"

EXPLANATION = """\
## What is measured

Three implementations run the same graphs with the same coroutine bodies
(`bench/workloads.py`: return 1, add 1, add three ints, sum the mappers):

* **asyncio** - the floor: one task per node awaiting its parents' tasks, no framework.
  *Build* records each node's body and parents; *run* creates the tasks and awaits the
  terminals.
* **pirn_like** (this source tree) and **pirn** (`pirn-core` from PyPI) - *build* is
  constructing the knots inside `with Tapestry() as t:`; *run* is
  `await t.run(RunRequest())`. Both use the default `Tapestry()`, which records one
  lineage record per knot into the in-memory history. Every knot gets
  `KnotConfig(id=..., validate_io=False)`: pirn_like's default, and pirn-core's opt-out of
  pydantic validation of every input and output, so both do the same work.
* **1st run** is the first run of a freshly built tapestry; **2nd run** runs the same
  tapestry again (pirn_like reuses its cached, validated plan). For asyncio both runs do
  the same work (fresh tasks from the same node specs), so both columns show its fastest
  run of either kind, and both ratios divide by it.

Workloads: a chain of 1,000 knots; fan-out N = a source, N mappers each consuming it and
one `Aggregator` consuming all N; layered = 20 layers of 100, knot j depending on knots
j, j+1, j+2 (mod 100) of the layer above; 1,000 sleeping 1 ms = the fan-out 1,000 with
each mapper awaiting `asyncio.sleep(0.001)`; and the 100,000-knot fan-out, also reported
in seconds with its process's peak RSS (`ru_maxrss`, imports included) by the end of its
first build and two runs (the history keeps both runs' lineage, as it would). Every
run's outputs are checked (e.g. the aggregator's sum), and for the knot frameworks so are
the run's status, its lineage count and the history's copy of it, so a broken run cannot
look fast.

## How to read it

Times are per knot (µs = total / knot count), best of the repeats: the machine is shared
and noisy, and the minimum is the run least disturbed. The `(Nx)` after a time is that
framework's time divided by asyncio's for the same phase: the per-knot overhead a
framework adds over bare tasks. For 1,000 sleeping 1 ms, where the sleep dominates, a
time near asyncio's shows the sleeps overlap. Compare ratios rather than absolute µs
across machines. A phase that takes longer than the cap (`--cap`, 120 s) is killed and
shown as timed out.

Import time is `python -c "import X"` minus `python -c "pass"`, best of several runs,
with the bytecode cache warm (kept in a temporary `PYTHONPYCACHEPREFIX` even when
`PYTHONDONTWRITEBYTECODE` is set), as for an installed package; without a cache, a source
checkout of pirn_like also compiles its own modules on every import.

## Keeping it fast

`python bench/run.py --quick` is a smoke check of about a minute, `--only "chain 1,000"`
runs one workload, and `python bench/hotspots.py "fan-out 10,000" [--phase
build|run1|run2] [--no-gc]` prints a cProfile of one phase, top functions by own time,
with the time the cyclic garbage collector took (cProfile charges that time to whichever
function was allocating when a collection started, so compare with `--no-gc`).
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer repeats, skip the 100k fan-out; does not write the docs unless --output",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        help="most repeats per workload; fewer once 30 s are spent (default 15; quick 2)",
    )
    parser.add_argument(
        "--cap", type=float, default=120.0, help="seconds one phase may take before timed out"
    )
    parser.add_argument(
        "--only", action="append", choices=list(WORKLOADS), help="run only this workload"
    )
    parser.add_argument("--output", type=Path, help=f"markdown file to write (default {DOC})")
    parser.add_argument("--no-write", action="store_true", help="print only")
    return parser.parse_args()


_SECTION = re.compile(r"<!-- (\w+):start -->.*?<!-- \1:end -->", re.S)


def _kept_sections(doc: Path) -> str:
    """The sections other benchmarks maintain (bench/backends.py, bench/dispatchers.py),
    between their ``<!-- name:start -->`` and ``<!-- name:end -->`` markers."""
    if not doc.exists():
        return ""
    return "".join(f"\n{m.group(0)}\n" for m in _SECTION.finditer(doc.read_text()))


def main() -> None:
    args = parse_args()
    repeats = args.repeats or (2 if args.quick else 15)
    budget = 10.0 if args.quick else 30.0  # seconds; a child stops repeating past it
    names = args.only or [w for w in WORKLOADS if not (args.quick and w == BIG)]
    measurements: list[Measurement] = []
    for name in names:
        workload = WORKLOADS[name]
        for impl in IMPLEMENTATIONS:
            print(f"… {name}: {impl}", file=sys.stderr, flush=True)
            big = name == BIG
            m = measure(
                impl,
                name,
                workload.nodes,
                repeats=min(repeats, 3) if big else repeats,
                budget=20.0 if big else budget,
                cap=args.cap,
            )
            measurements.append(m)
            if m.status != "ok":
                print(f"   {impl}: {m.status}", file=sys.stderr, flush=True)
    import_runs = 3 if args.quick else 10
    print("… import times", file=sys.stderr, flush=True)
    imports = {impl: import_ms(impl, import_runs) for impl in IMPLEMENTATIONS}
    report = Report(measurements, imports, import_runs)
    table = report.markdown()
    print(table)

    output = args.output or (None if args.quick else DOC)
    if output is not None and not args.no_write:
        output.write_text(document(table, measurements) + _kept_sections(output))
        print(f"wrote {output}", file=sys.stderr)
    failed = [t for t in report.targets() if not t.passed]
    print(f"\n{len(failed)} target(s) failed" if failed else "\nall targets pass")


def source_revision() -> str:
    """`` at <commit>`` of this checkout (``+ local changes`` if pirn_like has any)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "pirn_like"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return ""
    if not head:
        return ""
    return f" at commit {head}" + (" + local changes" if dirty else "")


def document(table: str, measurements: list[Measurement]) -> str:
    versions = {m.impl: m.version for m in measurements if m.version}
    command = shlex.join([Path(sys.executable).name, "bench/run.py", *sys.argv[1:]])
    facts = [
        f"* command: `cd <repo> && {command}` (`{sys.executable}`)",
        f"* date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"* python: {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores",
        *(
            f"* {impl}: {v}{source_revision() if impl == 'pirn_like' else ''}"
            for impl, v in versions.items()
        ),
    ]
    return "\n".join(
        [
            "# Performance",
            "",
            "How pirn_like's per-knot overhead compares with plain asyncio and with",
            "`pirn-core`, the framework whose API it follows. Generated by `bench/run.py`",
            "(see [bench/README.md](../bench/README.md)); rerun it to refresh this page.",
            "",
            "## Run",
            "",
            *facts,
            "",
            "## Results",
            "",
            table,
            "",
            EXPLANATION,
        ]
    )


if __name__ == "__main__":
    main()
