"""The seam between ``SqlLoad`` and a database: ``SqlTarget``."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol, Self

from pirn_like.backends._sql import Statements
from pirn_like.capabilities.sql._dialect import SqlDialect

__all__ = ["SqlTarget"]


class SqlTarget(Protocol):
    """A database a ``SqlLoad`` writes to.

    Constructing one does no I/O; the first ``transaction()`` (or ``async with``)
    opens it, once, even when loads start concurrently. ``transaction()`` yields the
    statements of one write transaction: committed when the block ends, rolled back
    when it raises or is cancelled. Driver errors surface as ``BackendError`` naming
    ``identity``, which never holds a password. Closed targets raise
    ``ClosedResourceError``.
    """

    @property
    def identity(self) -> str:
        """A stable, secret-free description: the URL with any password redacted."""
        ...

    @property
    def dialect(self) -> SqlDialect: ...

    def transaction(self) -> AbstractAsyncContextManager[Statements]: ...

    async def aclose(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc_info: object) -> None: ...
