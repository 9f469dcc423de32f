"""Resolve callable names: ``known_callables`` always, import paths only in loose mode."""

from __future__ import annotations

import builtins
import importlib
import re
from collections.abc import Callable, Mapping
from typing import Any

from pirn_like.yaml._source import Located, Path
from pirn_like.yaml._validate import close_matches

__all__ = ["CallableResolver"]

# ``package.module:attr.attr`` or ``package.module.attr``: identifiers only, so a
# reference can name an importable object but never carry code.
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_IDENT_ONLY = re.compile(rf"{_IDENT}\Z")
_REF = re.compile(rf"(?P<module>{_IDENT}(?:\.{_IDENT})*)(?::(?P<attr>{_IDENT}(?:\.{_IDENT})*))?\Z")


class CallableResolver:
    """Looks names up in ``known`` and, when ``loose``, imports ``module:attr`` paths."""

    def __init__(
        self, known: Mapping[str, Callable[..., Any]], *, loose: bool, located: Located
    ) -> None:
        self.known = known
        self.loose = loose
        self.located = located

    def resolve(self, name: str, path: Path, *, noun: str = "callable") -> Callable[..., Any]:
        """The callable named ``name`` (found at ``path`` in the YAML; ``noun`` names
        what it is for in messages)."""
        found = self.known.get(name)
        if found is not None:
            return found
        looks_dotted = "." in name or ":" in name
        if not self.loose:
            if looks_dotted:
                raise self.located.error(
                    f"{noun} {name!r} is an import path, refused in strict mode: add it to "
                    "known_callables, or set allow_callable_refs: true at the top level "
                    "(only for YAML written by trusted developers)",
                    path,
                )
            raise self.located.error(
                f"unknown {noun} {name!r}{close_matches(name, list(self.known))}; "
                f"known_callables has: {', '.join(sorted(self.known)) or '(none)'}",
                path,
            )
        return self._import(name, path)

    def resolve_exception(self, name: str, path: Path) -> type[BaseException]:
        """The exception class ``name`` names: a builtin exception (``ValueError``), a
        class in ``known_callables``, or in loose mode an importable one."""
        builtin = getattr(builtins, name, None) if _IDENT_ONLY.match(name) else None
        found: object = builtin if name not in self.known and builtin is not None else None
        if found is None:
            found = self.resolve(name, path, noun="retry_on exception")
        if not (isinstance(found, type) and issubclass(found, BaseException)):
            raise self.located.error(
                f"retry_on {name!r} is not an exception class (got {type(found).__name__}); "
                "name a builtin exception such as ValueError, or an exception class in "
                "known_callables",
                path,
            )
        return found

    def _import(self, name: str, path: Path) -> Callable[..., Any]:
        match = _REF.match(name)
        if match is None or not (match["attr"] or "." in match["module"]):
            raise self.located.error(
                f"callable {name!r} is neither in known_callables nor an import path "
                "like 'package.module:name' or 'package.module.name'",
                path,
            )
        module_name, attr = match["module"], match["attr"]
        if attr is None:
            module_name, attr = module_name.rsplit(".", 1)
        try:
            obj: Any = importlib.import_module(module_name)
        except ImportError as exc:
            raise self.located.error(
                f"callable {name!r}: cannot import module {module_name!r} ({exc})", path
            ) from exc
        for part in attr.split("."):
            if part.startswith("__"):
                raise self.located.error(
                    f"callable {name!r}: dunder attributes are not importable", path
                )
            try:
                obj = getattr(obj, part)
            except AttributeError:
                raise self.located.error(
                    f"callable {name!r}: module {module_name!r} has no attribute {attr!r}", path
                ) from None
        if not callable(obj):
            raise self.located.error(
                f"callable {name!r} resolves to a {type(obj).__name__}, which is not callable",
                path,
            )
        return obj  # pyright: ignore[reportUnknownVariableType]
