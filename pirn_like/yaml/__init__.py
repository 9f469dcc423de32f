"""YAML pipelines: declare parameters and knots in YAML, load them into a Tapestry.

Needs PyYAML (``pip install 'pirn-like[yaml]'``); ``import pirn_like`` does not load it.
"""

from pirn_like._errors import MissingExtraError

try:
    import yaml as _yaml  # noqa: F401  # pyright: ignore[reportUnusedImport]
except ImportError as exc:  # pragma: no cover - the extra is installed in tests
    raise MissingExtraError("YAML pipelines", "yaml", "pyyaml") from exc

from pirn_like._exports import publish
from pirn_like.yaml._dump import dump_pipeline
from pirn_like.yaml._load import load_pipeline
from pirn_like.yaml._schema import pipeline_schema
from pirn_like.yaml._service import Service, ServiceSettings, load_service

__all__ = [
    "Service",
    "ServiceSettings",
    "dump_pipeline",
    "load_pipeline",
    "load_service",
    "pipeline_schema",
]

publish(__name__, globals(), __all__)
