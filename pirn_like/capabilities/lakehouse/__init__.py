"""Lakehouse capability: Arrow batches into Apache Iceberg tables, SQL over them.

``LakehouseIngest`` writes a batch (modes ``append``, ``snapshot``, ``incremental``,
``bitemporal``) and outputs an ``IngestResult`` naming the snapshot it made;
``LakehouseQuery`` runs DuckDB SQL over tables read at a pinned snapshot, a point in
time, or their current state. The engine is a ``Lakehouse``; ``IcebergLakehouse``
keeps its catalog in SQLite (or any SQL catalog pyiceberg supports) and its data on
local disk or S3. pyiceberg, pyarrow and duckdb load on first use
(``pip install 'pirn-like[lakehouse]'``).
"""

from pirn_like._exports import publish
from pirn_like.capabilities.lakehouse._errors import (
    LakehouseError,
    SchemaConflictError,
    SnapshotNotFoundError,
    TableNotFoundError,
)
from pirn_like.capabilities.lakehouse._iceberg import IcebergLakehouse
from pirn_like.capabilities.lakehouse._ingest import LakehouseIngest
from pirn_like.capabilities.lakehouse._models import (
    BITEMPORAL_COLUMNS,
    IngestMode,
    IngestResult,
    IngestSpec,
)
from pirn_like.capabilities.lakehouse._protocol import Lakehouse
from pirn_like.capabilities.lakehouse._query import LakehouseQuery, run_sql

__all__ = [
    "BITEMPORAL_COLUMNS",
    "IcebergLakehouse",
    "IngestMode",
    "IngestResult",
    "IngestSpec",
    "Lakehouse",
    "LakehouseError",
    "LakehouseIngest",
    "LakehouseQuery",
    "SchemaConflictError",
    "SnapshotNotFoundError",
    "TableNotFoundError",
    "run_sql",
]

publish(__name__, globals(), [n for n in __all__ if n != "BITEMPORAL_COLUMNS"])
