"""Backends chosen by URL: ``sqlite:///runs.db``, ``postgresql://…``, ``s3://bucket/…``."""

from __future__ import annotations

import importlib
from typing import Any

from pirn_like._errors import BackendError
from pirn_like.backends._url import BackendURL
from pirn_like.protocols import DataStore, RunHistory, TapestryStore

__all__ = ["data_store_from_url", "history_from_url", "store_from_url"]

# scheme -> (module under pirn_like.backends, class name)
_STORES = {
    "memory": ("_memory_store", "InMemoryStore"),
    "sqlite": ("_sqlite_store", "SQLiteStore"),
    "postgresql": ("_postgres_store", "PostgresStore"),
    "postgres": ("_postgres_store", "PostgresStore"),
    "valkey": ("_valkey_store", "ValKeyStore"),
    "redis": ("_valkey_store", "ValKeyStore"),
}
_HISTORIES = {
    "memory": ("_memory_history", "InMemoryHistory"),
    "sqlite": ("_sqlite_history", "SQLiteHistory"),
    "duckdb": ("_duckdb_history", "DuckDBHistory"),
    "postgresql": ("_postgres_history", "PostgresHistory"),
    "postgres": ("_postgres_history", "PostgresHistory"),
}
_DATA_STORES = {
    "memory": ("_memory_data", "InMemoryDataStore"),
    "file": ("_disk_data", "LocalDiskDataStore"),
    "valkey": ("_valkey_data", "ValKeyDataStore"),
    "redis": ("_valkey_data", "ValKeyDataStore"),
    "valkeys": ("_valkey_data", "ValKeyDataStore"),
    "rediss": ("_valkey_data", "ValKeyDataStore"),
    "s3": ("_s3_data", "S3DataStore"),
}


def store_from_url(url: str, **options: Any) -> TapestryStore:
    """The TapestryStore a URL names (``memory://``, ``sqlite:///…``, ``postgresql://…``,
    ``valkey://host:port/db``); ``options`` go to its constructor."""
    return _build("TapestryStore", _STORES, url, options)


def history_from_url(url: str, **options: Any) -> RunHistory:
    """The RunHistory a URL names (``memory://``, ``sqlite:///…``, ``duckdb:///…``,
    ``postgresql://…``)."""
    return _build("RunHistory", _HISTORIES, url, options)


def data_store_from_url(url: str, **options: Any) -> DataStore:
    """The DataStore a URL names (``memory://``, ``file:///dir``, ``valkey://…``,
    ``s3://bucket/prefix?endpoint=…``)."""
    return _build("DataStore", _DATA_STORES, url, options)


def _build(kind: str, table: dict[str, tuple[str, str]], url: str, options: dict[str, Any]) -> Any:
    parsed = BackendURL.parse(url)
    entry = table.get(parsed.scheme)
    if entry is None:
        known = ", ".join(f"{s}://" for s in table)
        raise BackendError(f"no {kind} for URL {parsed.redacted!r}; known schemes: {known}")
    module, name = entry
    cls = getattr(importlib.import_module(f"pirn_like.backends.{module}"), name)
    if parsed.scheme == "memory":
        return cls(**options)
    return cls.from_url(url, **options)
