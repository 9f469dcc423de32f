"""The optional libraries, imported on first use with an error naming the extra."""

from __future__ import annotations

import importlib
from typing import Any

from pirn_like._errors import MissingExtraError

__all__ = ["duckdb", "pyarrow", "pyarrow_compute", "pyiceberg"]


def _load(module: str, package: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingExtraError("the lakehouse capability", "lakehouse", package) from error


def pyarrow() -> Any:
    """The ``pyarrow`` module."""
    return _load("pyarrow", "pyarrow")


def pyarrow_compute() -> Any:
    """The ``pyarrow.compute`` module."""
    return _load("pyarrow.compute", "pyarrow")


def duckdb() -> Any:
    """The ``duckdb`` module."""
    return _load("duckdb", "duckdb")


def pyiceberg(module: str) -> Any:
    """A ``pyiceberg`` module, e.g. ``pyiceberg("pyiceberg.expressions")``."""
    return _load(module, "pyiceberg")
