"""Backends: knot definitions (TapestryStore), runs and lineage (RunHistory), values (DataStore).

The persistent backends load on first use (``pirn_like.backends.SQLiteHistory``) and
import their driver only when opened, so ``import pirn_like`` stays light; a missing
driver is a ``MissingExtraError`` naming the extra to install.
"""

from typing import TYPE_CHECKING

from pirn_like._exports import lazy_exports, publish
from pirn_like.backends._from_url import data_store_from_url, history_from_url, store_from_url
from pirn_like.backends._memory_data import InMemoryDataStore
from pirn_like.backends._memory_history import InMemoryHistory
from pirn_like.backends._memory_store import InMemoryStore

if TYPE_CHECKING:
    from pirn_like.backends._disk_data import LocalDiskDataStore
    from pirn_like.backends._duckdb_history import DuckDBHistory
    from pirn_like.backends._postgres_history import PostgresHistory
    from pirn_like.backends._postgres_store import PostgresStore
    from pirn_like.backends._s3_data import S3DataStore
    from pirn_like.backends._sqlite_history import SQLiteHistory
    from pirn_like.backends._sqlite_store import SQLiteStore
    from pirn_like.backends._valkey_data import ValKeyDataStore
    from pirn_like.backends._valkey_store import ValKeyStore

_PERSISTENT = {
    "LocalDiskDataStore": "pirn_like.backends._disk_data",
    "S3DataStore": "pirn_like.backends._s3_data",
    "ValKeyDataStore": "pirn_like.backends._valkey_data",
    "SQLiteStore": "pirn_like.backends._sqlite_store",
    "PostgresStore": "pirn_like.backends._postgres_store",
    "ValKeyStore": "pirn_like.backends._valkey_store",
    "SQLiteHistory": "pirn_like.backends._sqlite_history",
    "DuckDBHistory": "pirn_like.backends._duckdb_history",
    "PostgresHistory": "pirn_like.backends._postgres_history",
}

__all__ = [
    "DuckDBHistory",
    "InMemoryDataStore",
    "InMemoryHistory",
    "InMemoryStore",
    "LocalDiskDataStore",
    "PostgresHistory",
    "PostgresStore",
    "S3DataStore",
    "SQLiteHistory",
    "SQLiteStore",
    "ValKeyDataStore",
    "ValKeyStore",
    "data_store_from_url",
    "history_from_url",
    "store_from_url",
]

publish(__name__, globals(), [n for n in __all__ if n not in _PERSISTENT])
__getattr__ = lazy_exports(__name__, globals(), _PERSISTENT)
