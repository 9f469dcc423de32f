"""The engine seam of the lakehouse knots."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol, Self, runtime_checkable

from pirn_like.capabilities.lakehouse._models import IngestResult, IngestSpec

__all__ = ["Lakehouse"]


@runtime_checkable
class Lakehouse(Protocol):
    """A catalog of versioned tables that takes Arrow batches and serves Arrow reads.

    Promises: constructing one does no I/O; the first call opens it (safely when
    called concurrently); writes to one table are serialized and each commits one
    snapshot or none; ``ingest`` creates the table (and namespace) on first use and
    adds new columns; a column whose type cannot take the data raises
    ``SchemaConflictError``. Table names are ``namespace.table`` or ``table`` (the
    default namespace). Using it after ``aclose`` raises ``ClosedResourceError``.
    """

    @property
    def identity(self) -> str:
        """A stable, secret-free description (catalog and warehouse) for config hashes."""
        ...

    def qualified(self, table: str) -> str:
        """``namespace.table`` for a table name as the user wrote it; refuses bad names."""
        ...

    async def ingest(self, table: str, data: Any, spec: IngestSpec) -> IngestResult:
        """Write ``data`` (an Arrow table) into ``table`` as ``spec`` says."""
        ...

    async def read(
        self,
        table: str,
        *,
        snapshot_id: int | None = None,
        as_of: datetime | None = None,
    ) -> tuple[Any, int | None]:
        """The table's rows (an Arrow table) and the snapshot id they were read at:
        the current snapshot, ``snapshot_id``, or the one current at ``as_of``."""
        ...

    async def aclose(self) -> None:
        """Release the catalog's connections; idempotent."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc_info: object) -> None: ...
