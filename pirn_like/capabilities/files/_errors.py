"""Errors the file knots raise on purpose."""

from __future__ import annotations

from pirn_like._errors import PirnLikeError

__all__ = ["MirrorConflictError"]


class MirrorConflictError(PirnLikeError):
    """A ``Mirror`` would overwrite a file it did not create, write two inputs to one
    output, or mirror a tree into itself. Nothing was written."""
