"""What every target shares: opening its session lazily and once, error translation
at the driver seam, and closing."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import ClassVar, Self

import anyio

from pirn_like._errors import BackendError, ClosedResourceError
from pirn_like.backends._sql import Session, Statements
from pirn_like.capabilities.sql._dialect import SqlDialect

__all__ = ["SessionTarget"]


class SessionTarget:
    """A ``SqlTarget`` over a backend ``Session``; subclasses say how to open it."""

    _dialect: ClassVar[SqlDialect]

    def __init__(self, identity: str) -> None:
        self._identity = identity
        self._session: Session | None = None
        self._closed = False
        self._entered = 0
        self._lifecycle = anyio.Lock()

    @property
    def identity(self) -> str:
        """The URL, password redacted."""
        return self._identity

    @property
    def dialect(self) -> SqlDialect:
        """How this database's SQL differs."""
        return self._dialect

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._identity!r})"

    async def _open(self) -> Session:
        raise NotImplementedError  # pragma: no cover - every subclass opens its driver

    async def _opened(self) -> Session:
        async with self._lifecycle:
            if self._closed:
                raise ClosedResourceError(f"{self!r} was closed; create a new one")
            if self._session is None:
                try:
                    self._session = await self._open()
                except ImportError:  # MissingExtraError already says what to install
                    raise
                except Exception as exc:
                    raise BackendError(
                        f"cannot open {self._identity}: {type(exc).__name__}: {exc}"
                    ) from None  # a driver message may quote the password
            return self._session

    @asynccontextmanager
    async def transaction(self) -> AsyncGenerator[Statements, None]:
        """One write transaction (see ``SqlTarget``)."""
        session = await self._opened()
        try:
            async with session.transaction() as tx:
                yield tx
        except session.errors as exc:
            raise BackendError(f"load into {self._identity} failed: {exc}") from exc

    async def aclose(self) -> None:
        """Close the connection(s); the target cannot be used again."""
        async with self._lifecycle:
            self._closed = True
            session, self._session = self._session, None
            if session is not None:
                with anyio.CancelScope(shield=True):
                    await session.aclose()

    async def __aenter__(self) -> Self:
        await self._opened()
        self._entered += 1
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        # Entered again while open (a target shared by several users): the outermost
        # ``async with`` closes it.
        self._entered -= 1
        if self._entered == 0:
            await self.aclose()
