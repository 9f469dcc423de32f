"""``load_service``: a pipeline file with its ``triggers:`` and ``service:`` sections,
ready for ``run_forever``."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from pirn_like._tapestry import Tapestry
from pirn_like.protocols import Dispatcher, Emitter, Trigger
from pirn_like.yaml._load import build_pipeline
from pirn_like.yaml._triggers import build_triggers

__all__ = ["Service", "ServiceSettings", "load_service"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceSettings:
    """The ``service:`` section: ``run_forever``'s keyword arguments."""

    max_concurrent_runs: int = 8
    grace_period: float = 30.0
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"


class Service(NamedTuple):
    """What ``load_service`` returns: ``tapestry, triggers, settings = load_service(...)``."""

    tapestry: Tapestry
    triggers: list[Trigger]
    settings: ServiceSettings


def load_service(
    source: str | os.PathLike[str],
    *,
    known_callables: Mapping[str, Callable[..., Any]] | None = None,
    allow_callable_refs: bool = True,
    dispatcher: Dispatcher | None = None,
    dispatchers: Mapping[str, Dispatcher] | None = None,
    emitters: Sequence[Emitter] = (),
    env: Mapping[str, str] | None = None,
) -> Service:
    """The tapestry, triggers and service settings a pipeline file describes.

    Takes ``load_pipeline``'s arguments and builds the tapestry the same way, then one
    trigger per ``triggers:`` entry (not opened: nothing connects until
    ``run_forever``). Serve it with
    ``await run_forever(triggers, tapestry, **dataclasses.asdict(settings))``.
    Every problem raises ``PipelineError`` with file, line and column.
    """
    pipeline, located, tapestry = build_pipeline(
        source,
        known_callables=known_callables,
        allow_callable_refs=allow_callable_refs,
        dispatcher=dispatcher,
        dispatchers=dispatchers,
        emitters=emitters,
        env=env,
    )
    triggers = build_triggers(pipeline, located, tapestry)
    settings = ServiceSettings(**pipeline.service.model_dump())
    return Service(tapestry, triggers, settings)
