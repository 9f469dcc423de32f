"""The JSON Schema of the pipeline format, for editors and validators."""

from __future__ import annotations

from typing import Any

from pirn_like.yaml._model import Pipeline

__all__ = ["pipeline_schema"]


def pipeline_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a pipeline file, as generated from its model."""
    schema = Pipeline.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
