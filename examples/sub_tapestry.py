"""SubTapestry: a knot whose body builds (and the engine runs) a whole inner pipeline.

Run it with ``python examples/sub_tapestry.py``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pirn_like import Knot, KnotConfig, Map, Reduce, SubTapestry, Tapestry, knot


@knot
async def load_text() -> str:
    return "the quick brown fox jumps over the lazy dog"


@knot
async def tokenize(text: str) -> list[str]:
    return text.split()


@knot
async def word_length(word: str) -> int:
    return len(word)


class LongestWord(SubTapestry):
    """Builds a per-input pipeline from the input value, returns its terminal knot."""

    async def process(self, text: str, **_: Any) -> Knot:
        words = tokenize(text=text, _config=KnotConfig(id="words"))
        lengths = Map(over=words, each=word_length, _config=KnotConfig(id="lengths"))
        return Reduce(of=lengths, combine=max, _config=KnotConfig(id="longest"))


@knot
async def report(longest: int) -> str:
    return f"longest word has {longest} letters"


async def main() -> None:
    with Tapestry() as t:
        text = load_text(_config=KnotConfig(id="text"))
        longest = LongestWord(text=text, _config=KnotConfig(id="longest_word"))
        report(longest=longest, _config=KnotConfig(id="report"))

    result = await t.run()
    print("outer outputs:", result.outputs)
    print("outer knots:", sorted(t.knots))

    # The inner pipeline ran as a child run, recorded in the same history.
    runs = await t.history.list_runs()
    inner = next(r for r in runs if r.parent_run_id == result.run_id)
    print("child run of:", inner.parent_knot_id, "| status:", inner.status.value)
    inner_ids = [rec.knot_id for rec in await t.history.get_lineage(inner.run_id)]
    print("inner knots:", inner_ids)


if __name__ == "__main__":
    asyncio.run(main())
