"""What every lease implementation shares: settings, the term's token, the open/closed
lifecycle and driver errors translated to ``BackendError``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Self
from urllib.parse import unquote, urlsplit

import anyio

from pirn_like._errors import BackendError, ClosedResourceError
from pirn_like.backends._url import redact
from pirn_like.triggers._lease import validate_lease

__all__ = ["StoredLease"]


class StoredLease(ABC):
    """A ``Lease`` over five primitive operations a store supplies; see ``Lease``.

    Subclasses connect in ``_connect``, close in ``_disconnect`` and list their
    driver's exception types in ``_driver_errors``.
    """

    _driver_errors: tuple[type[Exception], ...] = ()

    def __init__(self, name: str, *, holder: str | None, ttl: float, url: str) -> None:
        self._holder = validate_lease(name, holder, ttl)
        self._name = name
        self._ttl = float(ttl)
        self._shown_url = redact(url)
        password = urlsplit(url).password
        self._password = unquote(password) if password else None
        self._token: int | None = None
        self._state = "new"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._name!r} at {self._shown_url!r})"

    @property
    def name(self) -> str:
        return self._name

    @property
    def holder(self) -> str:
        return self._holder

    @property
    def ttl(self) -> float:
        return self._ttl

    @property
    def ttl_ms(self) -> int:
        return max(1, round(self._ttl * 1000))

    @property
    def token(self) -> int | None:
        return self._token

    async def __aenter__(self) -> Self:
        if self._state != "new":
            raise ClosedResourceError(f"{self!r} was opened before; create a new lease")
        async with self._driver("opening"):
            await self._connect()
        self._state = "open"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._state != "open":
            return
        with anyio.CancelScope(shield=True):
            try:
                if self._token is not None:
                    await self.release()
            finally:
                self._state = "closed"
                await self._disconnect()

    async def acquire(self) -> bool:
        """Take the lease if free or expired, or extend this holder's term."""
        async with self._driver("acquiring"):
            self._token = await self._take(self._token)
        return self._token is not None

    async def renew(self) -> bool:
        """Extend this holder's unexpired term; False (and no term) otherwise."""
        token = self._token
        if token is None:
            self._check_open()
            return False
        async with self._driver("renewing"):
            kept = await self._extend(token)
        if not kept:
            self._token = None
        return kept

    async def release(self) -> None:
        """End this holder's term, if it has one."""
        token, self._token = self._token, None
        if token is not None:
            async with self._driver("releasing"):
                await self._end(token)

    async def leader(self) -> str | None:
        async with self._driver("reading the holder of"):
            return await self._current_holder()

    async def read_value(self) -> str | None:
        async with self._driver("reading the value of"):
            return await self._read()

    async def write_value(self, value: str) -> bool:
        token = self._token
        if token is None:
            self._check_open()
            return False
        async with self._driver("writing the value of"):
            return await self._write(token, value)

    def _failure(self, action: str, exc: Exception) -> tuple[BackendError, Exception | None]:
        """The error to raise for a driver's ``exc``, and its cause: none if the
        driver's message quoted the password (masked in ours)."""
        message = f"{type(exc).__name__}: {exc}"
        leaked = bool(self._password) and self._password in message
        if self._password:
            message = message.replace(self._password, "***")
        error = BackendError(
            f"{action} the lease {self._name!r} at {self._shown_url} failed: {message}"
        )
        return error, None if leaked else exc

    def _check_open(self) -> None:
        if self._state != "open":
            state = "was closed" if self._state == "closed" else "is not open"
            raise ClosedResourceError(f"{self!r} {state}: use it inside `async with`")

    @asynccontextmanager
    async def _driver(self, action: str) -> AsyncGenerator[None]:
        if action != "opening":
            self._check_open()
        try:
            yield
        except self._driver_errors as exc:
            error, cause = self._failure(action, exc)
            raise error from cause

    # -- what a store supplies ----------------------------------------------------

    @abstractmethod
    async def _connect(self) -> None: ...

    @abstractmethod
    async def _disconnect(self) -> None: ...

    @abstractmethod
    async def _take(self, token: int | None) -> int | None:
        """Extend the term ``token`` if it is this holder's and unexpired, else start a
        new term if the lease is free or expired; the term's token, or None."""

    @abstractmethod
    async def _extend(self, token: int) -> bool: ...

    @abstractmethod
    async def _end(self, token: int) -> None: ...

    @abstractmethod
    async def _current_holder(self) -> str | None: ...

    @abstractmethod
    async def _read(self) -> str | None: ...

    @abstractmethod
    async def _write(self, token: int, value: str) -> bool: ...
