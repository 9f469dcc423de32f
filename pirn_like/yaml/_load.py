"""``load_pipeline``: YAML text or file in, Tapestry out."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pirn_like._errors import PipelineError
from pirn_like._tapestry import Tapestry
from pirn_like.protocols import Dispatcher, Emitter
from pirn_like.yaml._build import build_tapestry
from pirn_like.yaml._model import Pipeline
from pirn_like.yaml._source import Located, parse_yaml
from pirn_like.yaml._validate import validate_pipeline

__all__ = ["build_pipeline", "load_pipeline"]


def read_pipeline(
    source: str | os.PathLike[str], *, allow_callable_refs: bool, env: Mapping[str, str] | None
) -> tuple[Pipeline, Located]:
    """The validated pipeline in ``source`` (text or a path) and where each value sits."""
    if isinstance(source, str):
        text, file = source, None
    else:
        file = os.fspath(source)
        try:
            text = Path(file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PipelineError(f"cannot read the pipeline: {exc}", file=file) from exc
    located = parse_yaml(text, file=file, env=os.environ if env is None else env)
    pipeline = validate_pipeline(located)
    if pipeline.allow_callable_refs and not allow_callable_refs:
        raise located.error(
            "allow_callable_refs: true is refused here: this application loads pipelines "
            "in strict mode only (every callable must be one of its known_callables)",
            ("allow_callable_refs",),
            key=True,
        )
    return pipeline, located


def build_pipeline(
    source: str | os.PathLike[str],
    *,
    known_callables: Mapping[str, Callable[..., Any]] | None,
    allow_callable_refs: bool,
    dispatcher: Dispatcher | None,
    dispatchers: Mapping[str, Dispatcher] | None,
    emitters: Sequence[Emitter],
    env: Mapping[str, str] | None,
) -> tuple[Pipeline, Located, Tapestry]:
    """``load_pipeline``'s work, also giving the validated model and value positions."""
    pipeline, located = read_pipeline(source, allow_callable_refs=allow_callable_refs, env=env)
    tapestry = build_tapestry(
        pipeline,
        located,
        known_callables=dict(known_callables or {}),
        loose=pipeline.allow_callable_refs,
        dispatcher=dispatcher,
        dispatchers=dict(dispatchers or {}),
        emitters=emitters,
    )
    return pipeline, located, tapestry


def load_pipeline(
    source: str | os.PathLike[str],
    *,
    known_callables: Mapping[str, Callable[..., Any]] | None = None,
    allow_callable_refs: bool = True,
    dispatcher: Dispatcher | None = None,
    dispatchers: Mapping[str, Dispatcher] | None = None,
    emitters: Sequence[Emitter] = (),
    env: Mapping[str, str] | None = None,
) -> Tapestry:
    """Build the Tapestry a YAML pipeline describes.

    ``source`` is YAML text, or a path (``pathlib.Path``, any ``os.PathLike``) to a
    file; errors then name the file. Callables are looked up in ``known_callables``
    (strict mode). A file that sets ``allow_callable_refs: true`` may also name
    importable callables by path (``package.module:name``), unless the application
    passes ``allow_callable_refs=False`` to refuse that for untrusted YAML. ``${VAR}`` and
    ``${VAR:-default}`` in strings read ``env`` (default: ``os.environ``).
    Every problem raises ``PipelineError`` with file, line and column; nothing runs.
    A ``triggers:``/``service:`` section is validated but not built (``load_service``
    builds it).
    """
    _, _, tapestry = build_pipeline(
        source,
        known_callables=known_callables,
        allow_callable_refs=allow_callable_refs,
        dispatcher=dispatcher,
        dispatchers=dispatchers,
        emitters=emitters,
        env=env,
    )
    return tapestry
