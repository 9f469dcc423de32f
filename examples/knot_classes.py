"""Knots as classes: subclass Knot, write ``process``, register with or without ``with``.

Run it with ``python examples/knot_classes.py``.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from pirn_like import Knot, KnotConfig, Parameter, RunRequest, Tapestry


class Scale(Knot):
    """An async knot: runs in the event loop."""

    async def process(self, value: float, factor: float, **_: Any) -> float:
        return value * factor


class Label(Knot):
    """A plain ``def`` process runs in a worker thread, so it may block."""

    def process(self, value: float, unit: str = "m", **_: Any) -> str:
        assert threading.current_thread() is not threading.main_thread()
        return f"{value:g} {unit}"


async def main() -> None:
    t = Tapestry()

    # 1. Register by passing tapestry= explicitly (no `with` block needed).
    length = Parameter("length", float, tapestry=t)
    doubled = Scale(value=length, factor=2, _config=KnotConfig(id="doubled"), tapestry=t)

    # 2. Build a knot anywhere, then hand it to t.register().
    label = Label(value=doubled, unit="cm", _config=KnotConfig(id="label"))
    t.register(label)

    result = await t.run(RunRequest(parameters={"length": 1.25}))
    print("outputs:", result.outputs)
    print("parents of 'label':", sorted(label.parents), "constants:", dict(label.constants))
    print("knot_class of 'doubled':", result.lineage_for("doubled").knot_class)
    print("registered:", sorted(t.knots))


if __name__ == "__main__":
    asyncio.run(main())
