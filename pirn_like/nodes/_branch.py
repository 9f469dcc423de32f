"""Branch: route one input down exactly one of several named arms."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from pirn_like._errors import WiringError
from pirn_like.core._config import KnotConfig
from pirn_like.core._knot import Knot, Registrar, _current_registrar
from pirn_like.core._results import Skipped, SkipReason
from pirn_like.nodes._checks import call_maybe_async, require_callable, require_knot

__all__ = ["Branch", "BranchArm"]


class Branch(Knot):
    """``selector(input)`` names the arm to take; ``branch["tag"]`` is that arm's knot.

    The branch outputs the chosen tag. Each arm outputs the input when chosen and is
    ``Skipped`` (reason ``branch_not_selected``) otherwise, so its consumers skip.
    A tag outside ``branches`` fails the branch, naming the allowed tags.
    """

    def __init__(
        self,
        *,
        input: Any,
        selector: Callable[[Any], Any],
        branches: Iterable[str],
        _config: KnotConfig | None = None,
        tapestry: Registrar | None = None,
    ) -> None:
        name = f"Branch {getattr(_config, 'id', '?')!r}"
        self.selector = require_callable(name, "selector", selector)
        self.branches = tuple(branches)
        if not self.branches or len(set(self.branches)) != len(self.branches):
            raise WiringError(f"{name}: branches must be unique tags, got {self.branches!r}")
        source = require_knot(name, "input", input)
        super().__init__(_config=_config, tapestry=tapestry, input=source)
        registrar = tapestry if tapestry is not None else _current_registrar.get()
        self._arms = {
            tag: BranchArm(self, tag, source, tapestry=registrar) for tag in self.branches
        }

    def __getitem__(self, tag: str) -> BranchArm:
        try:
            return self._arms[tag]
        except KeyError:
            raise KeyError(
                f"branch {self.id!r} has no arm {tag!r}; arms: {self.branches}"
            ) from None

    def identity_settings(self) -> dict[str, object]:
        return {
            **super().identity_settings(),
            "selector": self.selector,
            "branches": list(self.branches),
        }

    async def process(self, input: Any, **_: Any) -> str:
        tag = await call_maybe_async(self.selector, input)
        if tag not in self._arms:
            raise ValueError(
                f"branch {self.id!r}: selector returned {tag!r}, not one of {self.branches}"
            )
        return tag


class BranchArm(Knot):
    """One arm of a Branch (id ``<branch id>[<tag>]``); built by the Branch itself."""

    def __init__(
        self, branch: Branch, tag: str, source: Any, *, tapestry: Registrar | None
    ) -> None:
        self.tag = tag
        super().__init__(
            _config=KnotConfig(id=f"{branch.id}[{tag}]"),
            tapestry=tapestry,
            chosen=branch,
            value=source,
        )

    def _checked_id(self, knot_id: object) -> Any:
        return knot_id

    def identity_settings(self) -> dict[str, object]:
        return {**super().identity_settings(), "tag": self.tag}

    async def process(self, chosen: str, value: Any, **_: Any) -> Any:
        if chosen == self.tag:
            return value
        return Skipped(SkipReason.BRANCH_NOT_SELECTED, f"branch chose {chosen!r}, not {self.tag!r}")
