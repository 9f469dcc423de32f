"""Re-exporting names under a package's public path."""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from contextlib import suppress

__all__ = ["publish"]


def publish(package: str, namespace: MutableMapping[str, object], names: Iterable[str]) -> None:
    """Set ``__module__`` of the package's own classes and functions to ``package``.

    Users then see (and pickle, and document) ``pirn_like.Knot`` rather than the
    private module it lives in.
    """
    for name in names:
        obj = namespace[name]
        module = getattr(obj, "__module__", None)
        if isinstance(module, str) and module.startswith("pirn_like.") and "._" in module:
            with suppress(AttributeError, TypeError):  # e.g. NewType aliases
                obj.__module__ = package  # type: ignore[attr-defined]
