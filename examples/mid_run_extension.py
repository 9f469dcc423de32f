"""Mid-run extension: a knot registers new knots while the run is in progress.

With ``run(..., extensible=True)`` knots registered into the tapestry during the run
join that same run. Run it with ``python examples/mid_run_extension.py``.
"""

from __future__ import annotations

import asyncio

from pirn_like import Aggregator, Knot, KnotConfig, RunRequest, Tapestry, knot

DOCUMENTS = {
    "intro": "pirn like knots tie work together",
    "usage": "wire knots then run the tapestry",
    "faq": "why knots",
}


@knot
async def count_words(text: str) -> int:
    return len(text.split())


def build() -> Tapestry:
    t = Tapestry()

    @knot
    async def discover(prefix: str) -> list[str]:
        """Decides at run time how much work there is, and adds a knot per piece."""
        names = sorted(DOCUMENTS)
        counters: dict[str, Knot] = {}
        for name in names:
            counters[name] = count_words(
                text=DOCUMENTS[name], _config=KnotConfig(id=f"{prefix}.{name}"), tapestry=t
            )
        # A knot added mid-run may consume other new knots (or existing ones).
        Aggregator(
            combine=lambda **counts: sum(counts.values()),
            _config=KnotConfig(id=f"{prefix}.total"),
            tapestry=t,
            **counters,
        )
        return names

    discover(prefix="words", _config=KnotConfig(id="discover"), tapestry=t)
    return t


async def main() -> None:
    t = build()
    print("before the run:", sorted(t.knots))
    result = await t.run(RunRequest(), extensible=True)
    print("status:", result.status.value)
    print("discovered:", result.outputs["discover"])
    for knot_id in ("words.faq", "words.intro", "words.usage", "words.total"):
        print(f"{knot_id:<12} {result.outputs[knot_id]}")
    print("same run:", {rec.run_id for rec in result.lineage} == {result.run_id})
    print("after the run:", sorted(t.knots))


if __name__ == "__main__":
    asyncio.run(main())
