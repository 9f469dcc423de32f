"""Glob patterns over relative ``/``-separated paths, compiled once to regular expressions.

A pattern without ``/`` matches a file's name in any directory (``*.csv``); one with
``/`` matches the whole relative path (``raw/*.csv``, ``raw/**/*.json``). ``*`` and
``?`` stay within one path segment, ``**`` spans any number of them, ``[abc]`` and
``[!abc]`` are character classes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["PathFilter", "patterns_of"]


def patterns_of(what: str, value: str | Sequence[str]) -> tuple[str, ...]:
    """``value`` as a tuple of patterns; a clear ``ValueError`` for a bad one."""
    patterns = (value,) if isinstance(value, str) else tuple(value)
    for pattern in patterns:
        if not isinstance(pattern, str) or not pattern:  # pyright: ignore[reportUnnecessaryIsInstance]
            raise ValueError(f"{what}: patterns are non-empty strings, got {pattern!r}")
        if pattern.startswith("/") or "\\" in pattern:
            raise ValueError(
                f"{what}: pattern {pattern!r} must be relative and use '/' (e.g. 'raw/*.csv')"
            )
    return patterns


def _translate(pattern: str) -> str:
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[" and (end := pattern.find("]", i + 2)) != -1:
            body = pattern[i + 1 : end]
            negate = body.startswith("!")
            body = re.escape(body[1:] if negate else body).replace(r"\-", "-")
            out.append(f"[^/{body}]" if negate else f"[{body}]")
            i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    body = "".join(out)
    return body if "/" in pattern else f"(?:.*/)?{body}"


@dataclass(frozen=True, slots=True)
class PathFilter:
    """Include patterns minus exclude patterns, for relative ``/``-separated paths."""

    include: tuple[str, ...]
    exclude: tuple[str, ...]
    _include: re.Pattern[str]
    _exclude: re.Pattern[str] | None

    @classmethod
    def of(cls, include: tuple[str, ...], exclude: tuple[str, ...]) -> PathFilter:
        def union(patterns: tuple[str, ...]) -> re.Pattern[str]:
            return re.compile("(?:" + "|".join(_translate(p) for p in patterns) + r")\Z")

        return cls(include, exclude, union(include), union(exclude) if exclude else None)

    def __call__(self, path: str) -> bool:
        if self._include.match(path) is None:
            return False
        return self._exclude is None or self._exclude.match(path) is None
