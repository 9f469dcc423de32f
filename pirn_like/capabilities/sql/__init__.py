"""SQL loads: ``SqlLoad`` puts rows into a table on SQLite, DuckDB or PostgreSQL in
mode ``append``, ``merge`` (upsert on keys) or ``scd2`` (versions over event time),
with dry runs, a schema-drift policy and idempotent re-runs.

Drivers load on first use: ``import pirn_like.capabilities.sql`` imports none.
"""

from typing import TYPE_CHECKING

from pirn_like._exports import lazy_exports, publish
from pirn_like.capabilities.sql._errors import SchemaDriftError, SqlLoadError
from pirn_like.capabilities.sql._models import (
    DriftPolicy,
    LoadMode,
    PlannedChange,
    SqlLoadResult,
)

if TYPE_CHECKING:
    from pirn_like.capabilities.sql._duckdb import DuckDBTarget
    from pirn_like.capabilities.sql._load import SqlLoad
    from pirn_like.capabilities.sql._postgres import PostgresTarget
    from pirn_like.capabilities.sql._protocol import SqlTarget
    from pirn_like.capabilities.sql._sqlite import SQLiteTarget
    from pirn_like.capabilities.sql._url import sql_target_from_url

_LAZY = {
    "DuckDBTarget": "pirn_like.capabilities.sql._duckdb",
    "PostgresTarget": "pirn_like.capabilities.sql._postgres",
    "SQLiteTarget": "pirn_like.capabilities.sql._sqlite",
    "SqlLoad": "pirn_like.capabilities.sql._load",
    "SqlTarget": "pirn_like.capabilities.sql._protocol",
    "sql_target_from_url": "pirn_like.capabilities.sql._url",
}

__all__ = [
    "DriftPolicy",
    "DuckDBTarget",
    "LoadMode",
    "PlannedChange",
    "PostgresTarget",
    "SQLiteTarget",
    "SchemaDriftError",
    "SqlLoad",
    "SqlLoadError",
    "SqlLoadResult",
    "SqlTarget",
    "sql_target_from_url",
]

publish(__name__, globals(), [n for n in __all__ if n not in _LAZY])
__getattr__ = lazy_exports(__name__, globals(), _LAZY)
