"""``IcebergLakehouse``: Apache Iceberg tables through pyiceberg.

The catalog is pyiceberg's SQL catalog (SQLite by default) and the warehouse a
local directory or an S3 bucket. pyiceberg is synchronous, so every call runs in a
worker thread; commits to one table are serialized by a per-table lock, so two
knots writing the same table in one process never race each other's commit.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Self, TypeVar

import anyio
import anyio.to_thread

from pirn_like._errors import ClosedResourceError
from pirn_like.backends._url import redact
from pirn_like.capabilities.lakehouse._errors import (
    LakehouseError,
    SnapshotNotFoundError,
    TableNotFoundError,
)
from pirn_like.capabilities.lakehouse._iceberg_writes import ingest_batch
from pirn_like.capabilities.lakehouse._libs import pyiceberg
from pirn_like.capabilities.lakehouse._models import IngestResult, IngestSpec

__all__ = ["IcebergLakehouse"]

_T = TypeVar("_T")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class IcebergLakehouse:
    """Iceberg tables in a SQL catalog (``catalog``: an SQLAlchemy URL such as
    ``sqlite:////abs/catalog.db``) over a warehouse (``file:///dir`` or
    ``s3://bucket/prefix``).

    ``properties`` go to pyiceberg as catalog properties (for S3: ``s3.endpoint``,
    ``s3.region``, ...; credentials are best left to the AWS environment). They are
    not part of ``identity``, so secrets in them never reach lineage.
    """

    def __init__(
        self,
        catalog: str,
        warehouse: str,
        *,
        name: str = "pirn_like",
        namespace: str = "default",
        properties: Mapping[str, str] | None = None,
    ) -> None:
        if not _NAME.match(namespace):
            raise ValueError(f"IcebergLakehouse: namespace {namespace!r} is not a plain name")
        self.catalog_url = catalog
        self.warehouse = warehouse
        self.name = name
        self.namespace = namespace
        self._properties = dict(properties or {})
        self._catalog: Any = None
        self._closed = False
        self._lifecycle = anyio.Lock()
        self._table_locks: dict[str, anyio.Lock] = {}
        self._tables: dict[str, Any] = {}
        """Loaded tables, reused while their metadata is current (commits check it)."""

    @classmethod
    def in_directory(cls, directory: str | Path, **options: Any) -> IcebergLakehouse:
        """The embedded default: ``<directory>/catalog.db`` and ``<directory>/warehouse``."""
        root = Path(directory).resolve()
        root.mkdir(parents=True, exist_ok=True)
        return cls(f"sqlite:///{root / 'catalog.db'}", (root / "warehouse").as_uri(), **options)

    @property
    def identity(self) -> str:
        """``iceberg:<catalog URL, redacted>#<warehouse, redacted>``."""
        return f"iceberg:{redact(self.catalog_url)}#{redact(self.warehouse)}"

    def __repr__(self) -> str:
        return f"IcebergLakehouse({self.identity!r})"

    async def __aenter__(self) -> Self:
        await self._open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Dispose of the catalog's database connections; idempotent."""
        async with self._lifecycle:
            self._closed = True
            catalog, self._catalog = self._catalog, None
            self._tables.clear()
        engine = getattr(catalog, "engine", None)
        if engine is not None:
            with anyio.CancelScope(shield=True):  # a cancelled close would leak connections
                await anyio.to_thread.run_sync(engine.dispose)

    async def _open(self) -> Any:
        async with self._lifecycle:
            if self._closed:
                raise ClosedResourceError(f"{self!r} was closed; create a new one to reopen it")
            if self._catalog is None:
                self._catalog = await anyio.to_thread.run_sync(self._connect)
            return self._catalog

    def _connect(self) -> Any:
        sql = pyiceberg("pyiceberg.catalog.sql")
        try:
            catalog = sql.SqlCatalog(
                self.name, uri=self.catalog_url, warehouse=self.warehouse, **self._properties
            )
            catalog.create_namespace_if_not_exists(self.namespace)
        except Exception as error:
            raise LakehouseError(
                f"cannot open the Iceberg catalog {self.identity}: {error}"
            ) from error
        return catalog

    async def _call(self, fn: Callable[..., _T], *args: Any) -> _T:
        catalog = await self._open()
        return await anyio.to_thread.run_sync(partial(fn, catalog, *args))

    def qualified(self, table: str) -> str:
        """``namespace.table`` for ``table`` or ``namespace.table``; refuses other names."""
        parts = table.split(".")
        if len(parts) == 1:
            parts = [self.namespace, *parts]
        if len(parts) != 2 or not all(_NAME.match(p) for p in parts):
            raise ValueError(
                f"lakehouse table {table!r}: expected 'table' or 'namespace.table' with "
                "letters, digits and '_'"
            )
        return ".".join(parts)

    async def ingest(self, table: str, data: Any, spec: IngestSpec) -> IngestResult:
        """Write ``data`` into ``table`` as ``spec`` says (see ``IngestMode``)."""
        name = self.qualified(table)
        lock = self._table_locks.setdefault(name, anyio.Lock())
        async with lock:
            return await self._call(ingest_batch, self._tables, name, data, spec)

    async def read(
        self, table: str, *, snapshot_id: int | None = None, as_of: datetime | None = None
    ) -> tuple[Any, int | None]:
        """The rows of ``table`` (an Arrow table) at its current snapshot, at
        ``snapshot_id``, or at the snapshot current at ``as_of``; and that snapshot's id."""
        return await self._call(_read, self.qualified(table), snapshot_id, as_of)


def _read(
    catalog: Any, name: str, snapshot_id: int | None, as_of: datetime | None
) -> tuple[Any, int | None]:
    table = _load(catalog, name)
    if snapshot_id is None and as_of is not None:
        when = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
        snapshot = table.snapshot_as_of_timestamp(int(when.timestamp() * 1000))
        if snapshot is None:
            raise SnapshotNotFoundError(
                f"lakehouse table {name!r} has no snapshot as of {when.isoformat()}"
            )
        snapshot_id = snapshot.snapshot_id
    elif snapshot_id is not None and table.snapshot_by_id(snapshot_id) is None:
        known = [s.snapshot_id for s in table.snapshots()]
        raise SnapshotNotFoundError(
            f"lakehouse table {name!r} has no snapshot {snapshot_id}; it has {known}"
        )
    if snapshot_id is None:
        current = table.current_snapshot()
        snapshot_id = None if current is None else current.snapshot_id
    if snapshot_id is None:
        return table.schema().as_arrow().empty_table(), None
    return table.scan(snapshot_id=snapshot_id).to_arrow(), snapshot_id


def _load(catalog: Any, name: str) -> Any:
    exceptions = pyiceberg("pyiceberg.exceptions")
    try:
        return catalog.load_table(name)
    except exceptions.NoSuchTableError as error:
        raise TableNotFoundError(f"lakehouse table {name!r} does not exist") from error
