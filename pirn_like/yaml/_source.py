"""Parse YAML text into plain data plus the line and column of every value.

PyYAML's safe loader composes a node tree first; each node carries its start mark, so
walking the tree gives a position for every path (``("nodes", 0, "callable")``).
``${VAR}`` / ``${VAR:-default}`` are substituted in string scalars here, where the
scalar's own position is known for the error naming an unset variable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from pirn_like._errors import PipelineError

__all__ = ["Located", "Mark", "Path", "parse_yaml"]

Path = tuple[str | int, ...]
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# Tags the safe loader constructs; anything else (``!!python/name:...``) is refused.
_SAFE_TAGS = frozenset(t for t in yaml.SafeLoader.yaml_constructors if t is not None)


@dataclass(frozen=True, slots=True)
class Mark:
    """A 1-based position in the YAML source."""

    line: int
    column: int


@dataclass(slots=True)
class Located:
    """Parsed data with the position of each value (``values``) and mapping key (``keys``)."""

    data: Any
    file: str | None
    values: dict[Path, Mark] = field(default_factory=dict[Path, Mark])
    keys: dict[Path, Mark] = field(default_factory=dict[Path, Mark])

    def mark(self, path: Path, *, key: bool = False) -> Mark | None:
        """The position of ``path`` (of its key if ``key``), else of its nearest ancestor."""
        for end in range(len(path), -1, -1):
            sub = path[:end]
            found = (self.keys.get(sub) if key and end == len(path) else None) or self.values.get(
                sub
            )
            if found is not None:
                return found
        return None

    def error(self, message: str, path: Path, *, key: bool = False) -> PipelineError:
        """A PipelineError at ``path``."""
        mark = self.mark(path, key=key)
        return PipelineError(
            message,
            file=self.file,
            line=mark.line if mark else None,
            column=mark.column if mark else None,
        )


def _mark(node: yaml.Node) -> Mark:
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1)


class _Walker:
    def __init__(self, located: Located, loader: yaml.SafeLoader, env: Mapping[str, str]) -> None:
        self.located = located
        self.loader = loader
        self.env = env
        self.seen: set[int] = set()

    def walk(self, node: yaml.Node, path: Path) -> None:
        self.located.values[path] = _mark(node)
        if id(node) in self.seen:
            return  # an alias: walked once, so nested aliases cannot blow up the walk
        self.seen.add(id(node))
        if node.tag not in _SAFE_TAGS:
            raise self.located.error(
                f"unsupported YAML tag {node.tag!r}: pipelines hold plain data only "
                "(strings, numbers, booleans, null, lists and mappings)",
                path,
            )
        if isinstance(node, yaml.MappingNode):
            seen: dict[object, Mark] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise self.located.error("mapping keys must be plain scalars", path)
                key: object = self.loader.construct_object(key_node)  # pyright: ignore[reportUnknownMemberType]
                child = (*path, key if isinstance(key, str | int) else str(key))
                if key in seen:
                    first = seen[key]
                    self.located.keys[child] = _mark(key_node)
                    raise self.located.error(
                        f"duplicate key {key!r} (first at line {first.line}): each key "
                        "appears once in a mapping",
                        child,
                        key=True,
                    )
                seen[key] = _mark(key_node)
                self.located.keys[child] = _mark(key_node)
                self.walk(value_node, child)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self.walk(item, (*path, index))
        elif isinstance(node, yaml.ScalarNode) and "${" in node.value:
            node.value = self._interpolate(node.value, path)
            if node.style is None:  # a plain scalar keeps YAML typing: ${N:-5} is an int
                node.tag = self.loader.resolve(yaml.ScalarNode, node.value, (True, False))

    def _interpolate(self, text: str, path: Path) -> str:
        def value(match: re.Match[str]) -> str:
            name, default = match[1], match[2]
            found = self.env.get(name)
            if found is not None:
                return found
            if default is not None:
                return default
            raise self.located.error(
                f"environment variable {name!r} is not set and has no default: set it, "
                f"or write ${{{name}:-default}}",
                path,
            )

        return _ENV.sub(value, text)


def parse_yaml(text: str, *, file: str | None, env: Mapping[str, str]) -> Located:
    """Parse ``text`` (one YAML document) into data with positions; errors are PipelineErrors."""
    located = Located(data=None, file=file)
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            raise PipelineError("the pipeline is empty: expected a mapping with 'nodes'", file=file)
        _Walker(located, loader, env).walk(root, ())
        located.data = loader.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise PipelineError(
            f"invalid YAML: {problem}",
            file=file,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        ) from exc
    except yaml.YAMLError as exc:
        raise PipelineError(f"invalid YAML: {exc}", file=file) from exc
    finally:
        loader.dispose()
    return located
