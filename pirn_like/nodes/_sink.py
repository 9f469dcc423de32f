"""Sink: a terminal knot that pushes values out of the pipeline."""

from __future__ import annotations

from pirn_like.core._knot import Knot

__all__ = ["Sink"]


class Sink(Knot):
    """Base class for terminal consumers (writes, publishes); by convention returns None."""
