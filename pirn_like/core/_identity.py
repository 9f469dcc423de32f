"""Stable identities of knots: config hashes and the identity of callables."""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap
from collections.abc import Callable, Mapping
from types import CodeType
from typing import Any

from pirn_like._errors import UnhashableValueError
from pirn_like._ids import ContentHash
from pirn_like.core._hashing import combine_hashes, content_hash

__all__ = ["callable_identity", "code_hash", "config_hash", "constant_identity"]


def callable_identity(fn: Callable[..., Any]) -> str:
    """A stable text naming a callable: qualified name, source and captured values.

    The source text (not bytecode) keeps the identity stable across Python
    versions; for a lambda it is the lambda expression alone, so the line around it
    (a knot id, another lambda) does not leak in. Default argument values and
    closure values are hashed too: ``lambda v: v > limit`` differs by ``limit``.
    Callables without Python source (builtins) are named only.
    """
    return _identity(fn, normalize=False)


def _identity(fn: Callable[..., Any], *, normalize: bool) -> str:
    if isinstance(fn, functools.partial):
        inner = _identity(fn.func, normalize=normalize)
        args = content_hash([list(fn.args), dict(fn.keywords)])
        return f"partial({inner}, {args})"
    name = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__qualname__)}"
    code = getattr(fn, "__code__", None)
    if code is None:
        return name
    try:
        source = _lambda_source(fn, code) if code.co_name == "<lambda>" else inspect.getsource(fn)
    except (OSError, TypeError):
        return name
    if normalize:
        source = _normalized(source)
    captured = [_captured(v) for v in (getattr(fn, "__defaults__", None) or ())]
    captured += [_captured(cell.cell_contents) for cell in (fn.__closure__ or ())]  # type: ignore[attr-defined]
    return f"{name}#{combine_hashes((source, *captured))}"


def code_hash(code_owner: type | Callable[..., Any]) -> ContentHash:
    """Hash of a knot's own code, for cache keys.

    For a function: its source and its default and closure values (see
    ``callable_identity``). For a class: the source of the class and of each base
    class defined outside pirn_like. Source is compared as a syntax tree, so
    comments, blank lines and formatting do not count; docstrings do. Code the knot
    calls (helper functions, imported modules, installed libraries) does not count.
    """
    if not isinstance(code_owner, type):
        return combine_hashes((_identity(code_owner, normalize=True),))
    parts: list[str] = []
    for klass in code_owner.__mro__:
        if klass.__module__.split(".", 1)[0] in ("pirn_like", "builtins", "typing"):
            continue
        try:
            parts.append(
                f"{klass.__module__}.{klass.__qualname__}:{_normalized(inspect.getsource(klass))}"
            )
        except (OSError, TypeError):
            parts.append(f"{klass.__module__}.{klass.__qualname__}")
    return combine_hashes(parts)


def _normalized(source: str) -> str:
    """Source text as its syntax tree, when it parses on its own."""
    try:
        return ast.dump(ast.parse(textwrap.dedent(source)))
    except SyntaxError:
        return source


def _captured(value: object) -> str:
    if callable(value):
        return callable_identity(value)
    try:
        return content_hash(value)
    except (UnhashableValueError, ValueError):
        # An opaque object (a client, a lock): identified by type, not by state.
        return f"opaque:{type(value).__module__}.{type(value).__qualname__}"


def _lambda_source(fn: Callable[..., Any], code: CodeType) -> str:
    """The source of the lambda expression itself, found by its position in the file."""
    lines, first = inspect.getsourcelines(fn)
    text = "".join(lines)
    # Real instruction spans only: RESUME and friends report an empty span at column 0.
    positions = [
        p
        for p in code.co_positions()
        if p[0] is not None and p[2] is not None and p[3] is not None and p[3] > p[2]
    ]
    if not positions:
        return "".join(inspect.getsourcelines(fn)[0])
    body_line = min(p[0] for p in positions if p[0] is not None)
    body_col = min(p[2] for p in positions if p[0] == body_line and p[2] is not None)
    # An indented block parses under a dummy `if`, which keeps every column as is.
    indented = text[:1].isspace()
    try:
        tree = ast.parse("if 1:\n" + text if indented else text)
    except SyntaxError:
        return text
    offset = first - 1 - indented
    best: ast.Lambda | None = None
    for node in ast.walk(tree):
        if not isinstance(node, ast.Lambda):
            continue
        start = (node.lineno + offset, node.col_offset)
        end = (node.end_lineno or node.lineno) + offset, node.end_col_offset or 0
        if start <= (body_line, body_col) <= end and (
            best is None or (node.lineno, node.col_offset) > (best.lineno, best.col_offset)
        ):
            best = node  # the innermost lambda containing the body
    return ast.unparse(best) if best is not None else text


def config_hash(
    knot_class: str,
    settings: Mapping[str, object],
    constants: Mapping[str, object],
    *,
    knot_id: str,
) -> ContentHash:
    """Hash what determines a knot's output besides its inputs.

    Callables among the constants are identified by ``callable_identity``. Knots
    whose settings and constants are all plain scalars share a cached hash.
    """
    key = _scalar_key(knot_class, settings, constants)
    if key is not None:
        cached = _scalar_hashes.get(key)
        if cached is None:
            if len(_scalar_hashes) >= _SCALAR_CACHE_SIZE:
                _scalar_hashes.clear()
            cached = _scalar_hashes[key] = _config_hash(
                knot_class, settings, constants, knot_id=knot_id
            )
        return cached
    return _config_hash(knot_class, settings, constants, knot_id=knot_id)


_SCALARS = frozenset({str, int, float, bool, type(None)})
_SCALAR_CACHE_SIZE = 4096
_scalar_hashes: dict[tuple[object, ...], ContentHash] = {}


def _scalar_key(
    knot_class: str, settings: Mapping[str, object], constants: Mapping[str, object]
) -> tuple[object, ...] | None:
    # The type goes into the key: 1, 1.0 and True are equal dict keys but hash apart.
    key: list[object] = [knot_class]
    for mapping in (settings, constants):
        for name, value in mapping.items():
            if type(value) not in _SCALARS:
                return None
            key.append((name, type(value), value))
        key.append("|")
    return tuple(key)


def _config_hash(
    knot_class: str,
    settings: Mapping[str, object],
    constants: Mapping[str, object],
    *,
    knot_id: str,
) -> ContentHash:
    parts = [knot_class]
    for mapping in (settings, constants):
        for name in sorted(mapping):
            try:
                parts.append(f"{name}={constant_identity(mapping[name])}")
            except UnhashableValueError as exc:
                raise exc.located(f"knot {knot_id!r}, constant {name!r}") from None
        parts.append("|")
    return combine_hashes(parts)


def constant_identity(value: object) -> str:
    """What identifies a knot's constant: a type by name, a callable by
    ``callable_identity``, anything else by its content hash."""
    if isinstance(value, type):
        return f"type:{value.__module__}.{value.__qualname__}"
    if callable(value):
        return f"callable:{callable_identity(value)}"
    return content_hash(value)
