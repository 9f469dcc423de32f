"""Tables, target checks and docs/performance.md from a set of measurements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from measure import Measurement
from workloads import BIG

__all__ = ["Report", "Target", "targets"]

MiB = 1024 * 1024
RUN_RATIO_MAX = 3.0
RUN_RATIO_AIM = 2.0
BUILD_US_MAX = 15.0
BIG_SECONDS_MAX = 5.0
BIG_RSS_MAX = 1024 * MiB
IMPORT_MS_MAX = 150.0
SUBJECT = "pirn_like"
BASELINE = "asyncio"


@dataclass(frozen=True, slots=True)
class Target:
    label: str
    passed: bool

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'}  {self.label}"


def _us(m: Measurement, phase: str) -> float | None:
    best = m.best(phase)
    return None if best is None else best / m.nodes * 1e6


def _ratio(m: Measurement, base: Measurement | None, phase: str) -> float | None:
    mine = m.best(phase)
    theirs = None if base is None else base.best(phase)
    return None if mine is None or not theirs else mine / theirs


def _cell(m: Measurement, base: Measurement | None, phase: str) -> str:
    us = _us(m, phase)
    if us is None:
        return m.status if m.status != "ok" else "n/a"
    ratio = _ratio(m, base, phase)
    return f"{us:,.1f}" + ("" if ratio is None or m.impl == BASELINE else f" ({ratio:.1f}x)")


def _mib(n: int | None) -> str:
    return "n/a" if n is None else f"{n / MiB:,.0f}"


def _secs(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def _baseline(ms: Sequence[Measurement], workload: str) -> Measurement | None:
    return next((m for m in ms if m.workload == workload and m.impl == BASELINE), None)


def targets(ms: Sequence[Measurement], imports: dict[str, float]) -> list[Target]:
    """The issue's targets, checked on pirn_like's measurements."""
    out: list[Target] = []
    for m in ms:
        if m.impl != SUBJECT:
            continue
        if m.status != "ok":
            out.append(Target(f"{m.workload}: measured ({m.status})", False))
            continue
        base = _baseline(ms, m.workload)
        for phase, what in (("run1", "1st run"), ("run2", "2nd run")):
            ratio = _ratio(m, base, phase)
            if ratio is not None:
                aim = "" if ratio <= RUN_RATIO_AIM else f"; aim {RUN_RATIO_AIM:g}x"
                out.append(
                    Target(
                        f"{m.workload}: {what} {ratio:.2f}x asyncio (≤ {RUN_RATIO_MAX:g}x{aim})",
                        ratio <= RUN_RATIO_MAX,
                    )
                )
        build = _us(m, "build")
        if build is not None:
            out.append(
                Target(
                    f"{m.workload}: build {build:.1f} µs/knot (≤ {BUILD_US_MAX:g})",
                    build <= BUILD_US_MAX,
                )
            )
        if m.workload == BIG:
            b, r = m.best("build"), m.best("run1")
            if b is not None and r is not None:
                out.append(
                    Target(
                        f"{BIG}: build + 1st run {b + r:.2f} s (< {BIG_SECONDS_MAX:g} s)",
                        b + r < BIG_SECONDS_MAX,
                    )
                )
            if m.peak_rss is not None:
                out.append(
                    Target(
                        f"{BIG}: peak RSS {m.peak_rss / MiB:,.0f} MiB (< 1 GiB)",
                        m.peak_rss < BIG_RSS_MAX,
                    )
                )
    if SUBJECT in imports:
        ms_ = imports[SUBJECT]
        out.append(
            Target(f"import pirn_like {ms_:.0f} ms (≤ {IMPORT_MS_MAX:g} ms)", ms_ <= IMPORT_MS_MAX)
        )
    return out


@dataclass(slots=True)
class Report:
    measurements: list[Measurement]
    imports: dict[str, float]
    import_runs: int

    def main_table(self) -> str:
        rows = [
            "| workload | knots | framework | build µs/knot | 1st run µs/knot "
            "| 2nd run µs/knot | repeats |",
            "|---|--:|---|--:|--:|--:|--:|",
        ]
        for m in self.measurements:
            base = _baseline(self.measurements, m.workload)
            rows.append(
                f"| {m.workload} | {m.nodes:,} | {m.impl} | {_cell(m, base, 'build')} "
                f"| {_cell(m, base, 'run1')} | {_cell(m, base, 'run2')} | {m.repeats} |"
            )
        return "\n".join(rows)

    def big_table(self) -> str:
        big = [m for m in self.measurements if m.workload == BIG]
        if not big:
            return ""
        rows = [
            "| framework | build s | 1st run s | build + 1st run s | 2nd run s "
            "| peak RSS MiB | RSS after import MiB | status |",
            "|---|--:|--:|--:|--:|--:|--:|---|",
        ]
        for m in big:
            b, r = m.best("build"), m.best("run1")
            total = None if b is None or r is None else b + r
            rows.append(
                f"| {m.impl} | {_secs(b)} | {_secs(r)} | {_secs(total)} "
                f"| {_secs(m.best('run2'))} | {_mib(m.peak_rss)} "
                f"| {_mib(m.rss_after_import)} | {m.status} |"
            )
        return "\n".join(rows)

    def import_table(self) -> str:
        rows = ["| import | ms over `python -c pass` |", "|---|--:|"]
        rows += [f"| `import {name}` | {ms:.0f} |" for name, ms in self.imports.items()]
        return "\n".join(rows)

    def targets(self) -> list[Target]:
        return targets(self.measurements, self.imports)

    def markdown(self) -> str:
        parts = ["### Per-knot time (best of the repeats)", "", self.main_table(), ""]
        big = self.big_table()
        if big:
            parts += [f"### {BIG}: time and memory (own process each)", "", big, ""]
        if self.imports:
            parts += [f"### Import time (best of {self.import_runs})", "", self.import_table(), ""]
        parts += ["### Targets (pirn_like)", "", "```", *(t.line() for t in self.targets()), "```"]
        return "\n".join(parts)
