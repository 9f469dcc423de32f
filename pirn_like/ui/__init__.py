"""The run explorer: a small read-only web app over a run history.

``serve_ui(history_url)`` serves it with uvicorn; ``build_ui_app(history)`` returns
the Starlette app to embed or test. Needs the ``ui`` extra (Starlette, uvicorn).
"""

import importlib.util

from pirn_like._errors import MissingExtraError
from pirn_like._exports import publish

# Every module here needs Starlette: say which extra to install, not a bare ImportError.
if importlib.util.find_spec("starlette") is None:  # pragma: no cover - without the extra
    raise MissingExtraError("the run explorer (pirn_like.ui)", "ui", "starlette")

from pirn_like.ui._app import build_ui_app
from pirn_like.ui._serve import run_ui, serve_ui

__all__ = ["build_ui_app", "run_ui", "serve_ui"]

publish(__name__, globals(), __all__)
