"""Knot bodies for bench/dispatchers.py, importable by worker processes by name."""

from __future__ import annotations

import time


def one() -> int:
    return 1


def inc(x: int) -> int:
    return x + 1


def total(*values: int) -> int:
    return sum(values)


def burn(x: int, seconds: float = 0.05) -> int:
    """Spin the CPU for ``seconds`` (no sleeping: the point is to hold a core)."""
    deadline = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < deadline:
        n += 1
    return x + 1


def gather(**values: int) -> int:
    return sum(values.values())
