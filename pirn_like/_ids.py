"""Identifier types used across pirn_like."""

from __future__ import annotations

from typing import NewType

__all__ = ["ContentHash", "KnotId", "RunId"]

KnotId = NewType("KnotId", str)
"""The explicit, user-chosen id of a knot (``param:<name>`` for parameters)."""

RunId = NewType("RunId", str)
"""The id of one run of a tapestry."""

ContentHash = NewType("ContentHash", str)
"""``sha256:<hex>`` over the canonical encoding of a value."""
