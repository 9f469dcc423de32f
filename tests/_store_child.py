"""Knots for the TapestryStore conformance suite, and a child process that adds one.

The tests and the child both import this module by name, so the knots' classes and
functions resolve from ``sys.modules`` in either process. The child runs as::

    python -c "import _store_child; _store_child.main()" <kind> <url> <key_prefix> <knot id>

and adds ``add_ten(x=Ref("src"))`` under the given id to the store, then closes it
(which writes the knot).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from pirn_like import KnotConfig, Ref, Tapestry, knot
from pirn_like.backends._from_url import store_from_url
from pirn_like.backends._persistent_store import PersistentStore
from pirn_like.protocols import TapestryStore


@knot
def source(value: int) -> int:
    return value


@knot
def add_ten(x: int) -> int:
    return x + 10


@knot
def numbers(n: int) -> list[int]:
    return list(range(1, n + 1))


@knot
def square(v: int) -> int:
    return v * v


@knot
def apply(fn: Callable[[int], int], x: int) -> int:
    return fn(x)


def is_positive(v: int) -> bool:
    return v > 0


def size_class(v: int) -> str:
    return "big" if v > 10 else "small"


def total(**values: int) -> int:
    return sum(values.values())


@dataclass
class Hold:
    """Lets a test see that ``wait_for_release`` started, and decide when it ends."""

    started: anyio.Event = field(default_factory=anyio.Event)
    release: anyio.Event = field(default_factory=anyio.Event)


HOLDS: dict[str, Hold] = {}
"""By name: knot constants must be storable, so the knot names its hold."""


@knot
async def wait_for_release(x: int, hold: str) -> int:
    HOLDS[hold].started.set()
    await HOLDS[hold].release.wait()
    return x


def open_store(kind: str, url: str, key_prefix: str, **options: Any) -> TapestryStore:
    """A new store of ``kind`` on the database at ``url`` (ValKey: under ``key_prefix``)."""
    if kind == "valkey":
        options["key_prefix"] = key_prefix
    return store_from_url(url, **options)


async def _add_late(kind: str, url: str, key_prefix: str, knot_id: str) -> None:
    store = open_store(kind, url, key_prefix)
    assert isinstance(store, PersistentStore)
    async with store:
        with Tapestry(store=store):
            add_ten(x=Ref("src"), _config=KnotConfig(id=knot_id))


def main() -> None:
    """Entry point of the child process (see the module docs)."""
    kind, url, key_prefix, knot_id = sys.argv[1:5]
    anyio.run(_add_late, kind, url, key_prefix, knot_id)
