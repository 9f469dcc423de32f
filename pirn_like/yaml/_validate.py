"""Validate parsed data against the format, turning pydantic's errors into PipelineErrors
that point at the offending line and say what was expected."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from pirn_like._errors import PipelineError
from pirn_like.yaml._model import (
    NODE_MODELS,
    TRIGGER_MODELS,
    CacheSpec,
    Pipeline,
    RetrySpec,
    ServiceSpec,
)
from pirn_like.yaml._source import Located, Path

__all__ = ["close_matches", "validate_pipeline"]

_NESTED: dict[str, type[BaseModel]] = {"retry": RetrySpec, "cache": CacheSpec}
_CACHE_BRANCHES = {"bool", "CacheSpec"}
# The tagged lists: their entries' models, keyed by the ``type`` pydantic tags them with.
_TAGGED: dict[str, tuple[str, dict[str, type[BaseModel]]]] = {
    "nodes": ("node", NODE_MODELS),
    "triggers": ("trigger", TRIGGER_MODELS),
}


def close_matches(word: str, choices: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for the nearest of ``choices``, or nothing."""
    found = difflib.get_close_matches(word, list(choices), n=3, cutoff=0.6)
    return f" (did you mean {', '.join(map(repr, found))}?)" if found else ""


def _data_path(data: Any, loc: tuple[int | str, ...]) -> Path:
    """Pydantic's location without the union tags it inserts (``nodes.0.knot.id``)."""
    path: list[str | int] = []
    current: Any = data
    for index, part in enumerate(loc):
        if len(path) == 2 and path[0] in _TAGGED and part in _TAGGED[str(path[0])][1]:
            continue  # the discriminator value pydantic adds after nodes.<i> / triggers.<i>
        in_dict = isinstance(current, dict) and part in current
        in_list = isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current)  # pyright: ignore[reportUnknownArgumentType]
        if in_dict or in_list:
            current = current[part]  # pyright: ignore[reportCallIssue, reportArgumentType]
        else:
            return (*path, *loc[index:])
        path.append(part)
    return tuple(path)


def _owner(data: Any, path: Path) -> type[BaseModel]:
    """The model whose mapping holds the last key of ``path``."""
    if path[0] == "service" and len(path) == 2:
        return ServiceSpec
    if len(path) <= 2 or path[0] not in _TAGGED:
        return Pipeline
    if len(path) == 4 and path[0] == "nodes" and path[2] in _NESTED:
        return _NESTED[str(path[2])]
    _, models = _TAGGED[str(path[0])]
    entry: Any = data[path[0]][path[1]]
    return models.get(str(entry.get("type")), next(iter(models.values())))


def _where(data: Any, path: Path) -> str:
    if len(path) >= 2 and path[0] == "triggers":
        entry = data["triggers"][path[1]]
        kind = entry.get("type") if isinstance(entry, dict) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        label = f"trigger #{int(path[1]) + 1}" + (f" ({kind})" if isinstance(kind, str) else "")
        rest = ".".join(map(str, path[2:]))
        return f"{label}, {rest}" if rest else label
    if len(path) >= 2 and path[0] == "nodes":
        node = data["nodes"][path[1]]
        ident = node.get("id") if isinstance(node, dict) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        label = f"node {ident!r}" if isinstance(ident, str) else f"node #{int(path[1]) + 1}"
        rest = ".".join(map(str, path[2:]))
        return f"{label}, {rest}" if rest else label
    return ".".join(map(str, path)) or "the pipeline"


def _message(data: Any, path: Path, error: ErrorDetails) -> tuple[str, bool]:
    """The message for one pydantic error, and whether it points at a key."""
    kind = error["type"]
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    if kind == "extra_forbidden":
        key = str(path[-1])
        allowed = [n for n in _owner(data, path).model_fields if n != "type"]
        where = _where(data, path[:-1])
        return (
            f"unknown key {key!r} in {where}{close_matches(key, allowed)}; "
            f"expected one of: {', '.join(allowed)}",
            True,
        )
    if kind == "missing":
        return f"{_where(data, path[:-1])} is missing required key {str(path[-1])!r}", True
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        noun, models = _TAGGED.get(str(path[0]) if path else "", _TAGGED["nodes"])
        if kind == "union_tag_not_found":
            return (
                f"{_where(data, path)} has no 'type'; expected one of: {', '.join(models)}",
                False,
            )
        tag = str(ctx.get("tag"))
        return (
            f"unknown {noun} type {tag!r}{close_matches(tag, list(models))}; "
            f"expected one of: {', '.join(models)}",
            False,
        )
    if kind == "value_error":  # a model's own check: its message is the whole story
        return f"{_where(data, path)}: {ctx.get('error', error['msg'])!s}", False
    got = error.get("input")
    shown = repr(got) if not isinstance(got, dict | list) else type(got).__name__  # pyright: ignore[reportUnknownArgumentType]
    return f"{_where(data, path)}: {error['msg'][0].lower()}{error['msg'][1:]}, got {shown}", False


def _unfold_unions(errors: list[ErrorDetails]) -> list[ErrorDetails]:
    """``cache: bool | CacheSpec`` fails once per branch; keep the branch the value was
    meant for (a mapping: CacheSpec), or one error saying both forms."""
    out: list[ErrorDetails] = []
    merged: set[tuple[int | str, ...]] = set()
    for error in errors:
        loc = tuple(error["loc"])
        cut = next((i for i, part in enumerate(loc) if part in _CACHE_BRANCHES), None)
        if cut is None or loc[cut - 1] != "cache":
            out.append(error)
            continue
        value = error["input"] if len(loc) == cut + 1 else None
        if len(loc) > cut + 1 or (loc[cut] == "CacheSpec" and isinstance(value, dict)):
            out.append({**error, "loc": loc[:cut] + loc[cut + 1 :]})
        elif not isinstance(value, dict) and loc[:cut] not in merged:
            merged.add(loc[:cut])
            out.append(
                {
                    **error,
                    "loc": loc[:cut],
                    "msg": "Input should be true, false or a mapping with ttl and version",
                }
            )
    return out


def validate_pipeline(located: Located) -> Pipeline:
    """The validated Pipeline, or a PipelineError at the first problem (others listed)."""
    data = located.data
    if not isinstance(data, dict):
        raise located.error(
            f"a pipeline is a mapping with 'name' and 'nodes', got {type(data).__name__}", ()
        )
    try:
        return Pipeline.model_validate(data)
    except ValidationError as exc:
        problems: list[PipelineError] = []
        for error in _unfold_unions(exc.errors()):
            path = _data_path(data, tuple(error["loc"]))
            message, key = _message(data, path, error)
            if error["type"] == "union_tag_invalid":
                path = (*path, "type")  # point at the type itself
            problems.append(located.error(message, path, key=key))
        first = problems[0]
        if len(problems) > 1:
            rest = "\n".join(f"  {p}" for p in problems[1:])
            raise PipelineError(
                f"{first.problem}\n  and {len(problems) - 1} more:\n{rest}",
                file=first.file,
                line=first.line,
                column=first.column,
            ) from None
        raise first from None
