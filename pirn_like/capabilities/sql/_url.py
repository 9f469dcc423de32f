"""``sql_target_from_url``: a target chosen by URL scheme."""

from __future__ import annotations

from pirn_like.backends._sql import database_path
from pirn_like.backends._url import BackendURL
from pirn_like.capabilities.sql._protocol import SqlTarget

__all__ = ["sql_target_from_url"]


def sql_target_from_url(url: str) -> SqlTarget:
    """The target ``url`` names, not yet opened: ``sqlite:///path.db``,
    ``duckdb:///path.duckdb`` (or ``duckdb:///:memory:``), ``postgresql://...``."""
    scheme = BackendURL.parse(url).scheme
    if scheme == "sqlite":
        from pirn_like.capabilities.sql._sqlite import SQLiteTarget

        return SQLiteTarget(database_path(url, "sqlite", "SQLiteTarget", example="loads.db"))
    if scheme == "duckdb":
        from pirn_like.capabilities.sql._duckdb import DuckDBTarget

        return DuckDBTarget(database_path(url, "duckdb", "DuckDBTarget", example="loads.duckdb"))
    if scheme in ("postgresql", "postgres"):
        from pirn_like.capabilities.sql._postgres import PostgresTarget

        return PostgresTarget(url)
    shown = BackendURL.parse(url).redacted
    raise ValueError(
        f"no SQL target for {shown!r}: use sqlite:///path.db, duckdb:///path.duckdb or "
        "postgresql://user@host/db"
    )
