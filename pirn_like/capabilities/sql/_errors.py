"""The errors a SQL load raises on purpose."""

from __future__ import annotations

from pirn_like._errors import PirnLikeError

__all__ = ["SchemaDriftError", "SqlLoadError"]


class SqlLoadError(PirnLikeError, ValueError):
    """A load cannot be done as asked: bad rows, keys or table. Messages name the table
    and the offending column, key or value."""


class SchemaDriftError(SqlLoadError):
    """The rows do not fit the existing table and the drift policy does not allow the
    difference. ``new_columns`` and ``changed_columns`` name the columns."""

    def __init__(
        self, message: str, *, new_columns: tuple[str, ...], changed_columns: tuple[str, ...]
    ) -> None:
        super().__init__(message)
        self.new_columns = new_columns
        self.changed_columns = changed_columns
