"""Turn a pipeline's ``triggers:`` entries into the trigger objects they name.

Each entry maps field for field onto its class's constructor; a constructor that
refuses its settings (a bad cron expression, an unknown time zone) becomes a
``PipelineError`` at the entry. Triggers connect only when opened, so building one
touches no broker.
"""

from __future__ import annotations

from typing import Any

from pirn_like._errors import BackendError, ParameterError
from pirn_like._tapestry import Tapestry
from pirn_like.protocols import Trigger
from pirn_like.triggers import (
    CronTrigger,
    FileWatchTrigger,
    KafkaTrigger,
    MissedFires,
    ValKeyTrigger,
    WebhookTrigger,
)
from pirn_like.yaml._model import (
    CronTriggerSpec,
    FileWatchTriggerSpec,
    KafkaTriggerSpec,
    Pipeline,
    ValKeyTriggerSpec,
    WebhookTriggerSpec,
)
from pirn_like.yaml._source import Located

__all__ = ["build_triggers"]

_Spec = (
    CronTriggerSpec
    | WebhookTriggerSpec
    | KafkaTriggerSpec
    | ValKeyTriggerSpec
    | FileWatchTriggerSpec
)


def _settings(spec: _Spec) -> dict[str, Any]:
    """The entry's fields, as constructor keywords (without ``type``)."""
    return {k: v for k, v in spec.model_dump().items() if k != "type"}


def _trigger(spec: _Spec, tapestry: Tapestry) -> Trigger:
    kwargs = _settings(spec)
    match spec:
        case CronTriggerSpec():
            kwargs["missed_fires"] = MissedFires(spec.missed_fires)
            return CronTrigger(kwargs.pop("cron"), **kwargs)
        case WebhookTriggerSpec():
            return WebhookTrigger(kwargs.pop("path"), tapestry=tapestry, **kwargs)
        case KafkaTriggerSpec():
            return KafkaTrigger(kwargs.pop("topic"), **kwargs)
        case ValKeyTriggerSpec():
            return ValKeyTrigger(kwargs.pop("url"), **kwargs)
        case FileWatchTriggerSpec():
            return FileWatchTrigger(kwargs.pop("directory"), **kwargs)


def build_triggers(pipeline: Pipeline, located: Located, tapestry: Tapestry) -> list[Trigger]:
    """The pipeline's triggers, in file order; scheduled parameters checked against
    ``tapestry`` so a service that could only refuse its runs does not start."""
    triggers: list[Trigger] = []
    for i, spec in enumerate(pipeline.triggers):
        where = f"trigger #{i + 1} ({spec.type})"
        if isinstance(spec, CronTriggerSpec):
            try:
                tapestry.check_parameters(spec.parameters)
            except ParameterError as exc:
                raise located.error(
                    f"{where}, parameters: {exc}", ("triggers", i, "parameters")
                ) from exc
        try:
            triggers.append(_trigger(spec, tapestry))
        except (ValueError, TypeError, BackendError) as exc:  # PipelineError is a ValueError
            raise located.error(f"{where}: {exc}", ("triggers", i)) from exc
    return triggers
