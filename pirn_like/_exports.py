"""Re-exporting names under a package's public path."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from contextlib import suppress

__all__ = ["lazy_exports", "publish"]


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


def lazy_exports(
    package: str, namespace: MutableMapping[str, object], sources: Mapping[str, str]
) -> Callable[[str], object]:
    """A module ``__getattr__`` that imports each name from its module on first use.

    ``sources`` maps a public name to the module defining it (or to another public
    package re-exporting it). Heavy or optional parts stay out of ``import pirn_like``.
    """

    def __getattr__(name: str) -> object:
        source = sources.get(name)
        if source is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        obj = getattr(importlib.import_module(source), name)
        publish(package, {name: obj}, [name])
        namespace[name] = obj
        return obj

    return __getattr__
