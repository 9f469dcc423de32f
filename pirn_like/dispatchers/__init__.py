"""Dispatchers decide where a knot's code runs."""

from pirn_like._exports import publish
from pirn_like.dispatchers._local import LocalDispatcher
from pirn_like.dispatchers._thread import ThreadDispatcher

__all__ = ["LocalDispatcher", "ThreadDispatcher"]

publish(__name__, globals(), __all__)
