"""Load what a command runs: a YAML pipeline file or a ``module:attribute`` tapestry."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_origin

from pirn_like import Parameter, Tapestry
from pirn_like.cli._console import bad_input
from pirn_like.protocols import Emitter

if TYPE_CHECKING:
    from pirn_like.yaml import Service

__all__ = ["is_pipeline_file", "load_service_file", "load_target", "parse_parameters"]

_YAML_SUFFIXES = (".yaml", ".yml")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def load_target(
    target: str,
    *,
    history: str | None = None,
    store: str | None = None,
    data_store: str | None = None,
    emitters: Sequence[Emitter] = (),
) -> Tapestry:
    """The tapestry ``target`` names, with the given backend URLs and emitters.

    ``target`` is a YAML file (``.yaml``/``.yml``) or ``package.module:attribute``
    naming a ``Tapestry`` (or a function returning one). Imports resolve from the
    current directory first, as ``python -m`` does.
    """
    _importable_cwd()
    tapestry = _load_yaml(target) if is_pipeline_file(target) else _load_attribute(target)
    if history is None and store is None and data_store is None and not emitters:
        return tapestry
    return tapestry.with_backends(
        history=history, store=store, data_store=data_store, emitters=emitters
    )


def is_pipeline_file(target: str) -> bool:
    """Whether ``target`` names a YAML pipeline file rather than ``module:attribute``."""
    return target.endswith(_YAML_SUFFIXES)


def load_service_file(
    target: str, *, history: str | None, store: str | None, data_store: str | None
) -> Service:
    """A pipeline file's tapestry (with the given backend URLs), triggers and settings."""
    _importable_cwd()
    path = _pipeline_path(target)
    from pirn_like.yaml import load_service

    service = load_service(path)
    tapestry = service.tapestry.with_backends(history=history, store=store, data_store=data_store)
    return service._replace(tapestry=tapestry)


def _importable_cwd() -> None:
    cwd = str(Path.cwd())
    if cwd not in sys.path:
        sys.path.insert(0, cwd)


def _pipeline_path(target: str) -> Path:
    path = Path(target)
    if not path.is_file():
        bad_input(f"no pipeline file {target!r}")
    return path


def _load_yaml(target: str) -> Tapestry:
    path = _pipeline_path(target)
    from pirn_like.yaml import load_pipeline

    return load_pipeline(path)


def _load_attribute(target: str) -> Tapestry:
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        bad_input(
            f"cannot load {target!r}: give a YAML file (pipeline.yaml) or 'package.module:tapestry'"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        bad_input(f"cannot import module {module_name!r} of {target!r}: {exc}")
    value: Any = module
    for part in attribute.split("."):
        if not hasattr(value, part):
            bad_input(f"module {module_name!r} has no attribute {attribute!r}")
        value = getattr(value, part)
    if not isinstance(value, Tapestry) and callable(value):
        value = value()
    if not isinstance(value, Tapestry):
        bad_input(f"{target!r} is a {type(value).__name__}, not a Tapestry")
    return value


def parse_parameters(tapestry: Tapestry, pairs: Sequence[str]) -> dict[str, object]:
    """``name=value`` pairs converted by the type of the tapestry's Parameter ``name``:
    int, float and bool parsed, containers read as JSON, anything else passed as text
    (the run validates it against the declared type)."""
    declared = {k.name: k for k in tapestry.knots.values() if isinstance(k, Parameter)}
    parameters: dict[str, object] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name:
            bad_input(f"parameter {pair!r} is not name=value")
        param = declared.get(name)
        if param is None:
            bad_input(f"unknown parameter {name!r}; this tapestry declares: {sorted(declared)}")
        parameters[name] = _convert(name, param.type_, text)
    return parameters


def _convert(name: str, type_: Any, text: str) -> object:
    kind = get_origin(type_) or type_
    try:
        if kind is bool:
            return _boolean(text)
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        if kind in (dict, list, tuple, set, frozenset):
            return json.loads(text)
    except ValueError as exc:
        type_name = getattr(type_, "__name__", repr(type_))
        bad_input(f"parameter {name!r} ({type_name}) cannot take {text!r}: {exc}")
    return text


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"expected one of {sorted(_TRUE | _FALSE)}")
