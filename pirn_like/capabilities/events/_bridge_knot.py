"""``BridgePush``: one push of a bridge, as a knot whose output names what it delivered."""

from __future__ import annotations

from typing import Any

from pirn_like._errors import WiringError
from pirn_like.capabilities.events._bridge import Bridge
from pirn_like.capabilities.events._bridge_models import PushSummary
from pirn_like.core._config import KnotConfig
from pirn_like.core._knot import Knot, Registrar

__all__ = ["BridgePush"]


class BridgePush(Knot):
    """Pushes everything after the bridge's cursor to its sink (``Bridge.push``) and
    returns the ``PushSummary``.

    ``BridgePush(bridge=b, orders=write_order, _config=KnotConfig(id="push"))``: any
    inputs besides ``max_events`` are upstream knots the push waits for (typically the
    writes whose events it should carry); they are recorded as its inputs, so lineage
    links the push to them, and its output hash to the event versions it sent. The
    bridge (store, sink, cursor, filters) enters the config hash through
    ``Bridge.identity``. Do not cache this knot (``KnotConfig(cache=True)``): a push is
    an effect. Runs on the local and thread dispatchers (the bridge holds connections
    and is not shipped to remote workers).
    """

    def __init__(
        self,
        *,
        bridge: Bridge,
        _config: KnotConfig | None = None,
        tapestry: Registrar | None = None,
        **inputs: object,
    ) -> None:
        if not isinstance(bridge, Bridge):
            raise WiringError(f"BridgePush needs bridge=Bridge(...), got {bridge!r}")
        self.bridge = bridge
        super().__init__(_config=_config, tapestry=tapestry, **inputs)

    def identity_settings(self) -> dict[str, object]:
        return {**super().identity_settings(), "bridge": self.bridge.identity}

    async def process(self, max_events: int | None = None, **upstream: Any) -> PushSummary:
        return await self.bridge.push(max_events=max_events)
