"""Errors of the lakehouse capability: a caller can catch each one on its own."""

from __future__ import annotations

from pirn_like._errors import PirnLikeError

__all__ = ["LakehouseError", "SchemaConflictError", "SnapshotNotFoundError", "TableNotFoundError"]


class LakehouseError(PirnLikeError):
    """A lakehouse operation failed; the message names the table."""


class SchemaConflictError(LakehouseError, TypeError):
    """Ingested data has a column whose type the table's column cannot take."""

    def __init__(self, table: str, column: str, table_type: str, data_type: str) -> None:
        super().__init__(
            f"table {table!r}: column {column!r} is {table_type} in the table but "
            f"{data_type} in the data; cast the column in the data, or ingest into a new table"
        )
        self.table = table
        self.column = column
        self.table_type = table_type
        self.data_type = data_type


class TableNotFoundError(LakehouseError, LookupError):
    """A read named a table the catalog does not have."""


class SnapshotNotFoundError(LakehouseError, LookupError):
    """A time-travel read named a snapshot (or a time) the table does not have."""
