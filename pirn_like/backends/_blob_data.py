"""What the persistent DataStores share: values kept as bytes under their content hash.

A subclass says how to open, close, read, write, test and remove one blob named by a
hash's hex digits; ``BlobDataStore`` does the rest the same way for every backend:
validating hashes, turning values into bytes with a ``Serializer``, refusing use
while closed, and translating the driver's errors into ``BackendError``.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Generator
from contextlib import contextmanager
from typing import Self

import anyio

from pirn_like._errors import BackendError, ClosedResourceError
from pirn_like._ids import ContentHash
from pirn_like.backends._url import redact
from pirn_like.core._serialization import SafeSerializer
from pirn_like.protocols import Serializer

__all__ = ["BlobDataStore", "hash_hex"]

_CONTENT_HASH = re.compile(r"sha256:([0-9a-f]{64})")


def hash_hex(content_hash: str) -> str:
    """The 64 hex digits of ``content_hash``; ``ValueError`` naming it if it is not one.

    Backends build file paths and keys from these digits, so nothing else (``..``,
    ``/``, another prefix) can reach them.
    """
    match = _CONTENT_HASH.fullmatch(content_hash) if isinstance(content_hash, str) else None
    if match is None:
        raise ValueError(
            f"{content_hash!r} is not a content hash: expected 'sha256:' and 64 lowercase "
            "hex digits, as pirn_like.content_hash() returns"
        )
    return match.group(1)


class BlobDataStore(ABC):
    """A DataStore that keeps each value as bytes under the hex digits of its hash.

    Content-addressed: putting a hash that is already kept changes nothing and does
    not serialize the value again. The store may be entered by several ``async with``
    blocks at once (a tapestry's runs share it); it opens on the first and closes for
    good when the last one ends (a new store over the same location reads the values).
    """

    def __init__(self, *, url: str, serializer: Serializer | None) -> None:
        self._url = redact(url)
        self._serializer: Serializer = serializer if serializer is not None else SafeSerializer()
        self._entered = 0
        self._closed = False
        self._lifecycle = anyio.Lock()
        self._driver_errors: tuple[type[Exception], ...] = ()
        """Set by ``_open``: the errors of the driver, turned into ``BackendError``."""

    @property
    def url(self) -> str:
        """Where the values are kept, with any password redacted."""
        return self._url

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._url!r})"

    # -- lifecycle --------------------------------------------------------------

    async def __aenter__(self) -> Self:
        async with self._lifecycle:
            if self._closed:
                raise ClosedResourceError(f"{self!r} was closed; create a new one to reopen it")
            if self._entered == 0:
                with self._translating("open the store"):
                    await self._open()
            self._entered += 1
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        async with self._lifecycle:
            if self._entered == 0:
                return
            self._entered -= 1
            if self._entered == 0:
                self._closed = True
                # A half-closed client would leak its connections: finish even if cancelled.
                with anyio.CancelScope(shield=True), self._translating("close the store"):
                    await self._close()

    # -- DataStore --------------------------------------------------------------

    async def put(self, content_hash: ContentHash, value: object) -> None:
        """Keep ``value`` under ``content_hash``; ``SerializationError`` if the serializer
        cannot turn it into bytes."""
        hex_ = self._hex(content_hash)
        with self._translating(f"put {content_hash}"):
            if await self._renew(hex_):
                return
            await self._write(hex_, self._serializer.dumps(value))

    async def get(self, content_hash: ContentHash) -> object:
        """The value, or ``KeyError`` naming the hash if it is not (or no longer) kept."""
        hex_ = self._hex(content_hash)
        with self._translating(f"get {content_hash}"):
            data = await self._read(hex_)
        if data is None:
            raise KeyError(
                f"no value with hash {content_hash!r} is kept in {self._url} (scrubbed?)"
            )
        return self._serializer.loads(data)

    async def contains(self, content_hash: ContentHash) -> bool:
        """Whether a value is kept under ``content_hash``."""
        hex_ = self._hex(content_hash)
        with self._translating(f"look up {content_hash}"):
            return await self._exists(hex_)

    async def delete(self, content_hash: ContentHash) -> bool:
        """Scrub the value; True if it was kept."""
        hex_ = self._hex(content_hash)
        with self._translating(f"delete {content_hash}"):
            return await self._remove(hex_)

    # -- what a backend provides ---------------------------------------------------

    @abstractmethod
    async def _open(self) -> None:
        """Connect (or create the directory); set ``_driver_errors``."""

    @abstractmethod
    async def _close(self) -> None: ...

    @abstractmethod
    async def _read(self, hex_: str) -> bytes | None:
        """The blob's bytes, or None if there is none."""

    @abstractmethod
    async def _write(self, hex_: str, data: bytes) -> None:
        """Store the blob whole: a reader never sees part of it."""

    @abstractmethod
    async def _exists(self, hex_: str) -> bool: ...

    @abstractmethod
    async def _remove(self, hex_: str) -> bool:
        """Remove the blob; True if there was one."""

    async def _renew(self, hex_: str) -> bool:
        """True if the blob is kept already; a backend whose values expire restarts
        the clock here, as a put of the same value would."""
        return await self._exists(hex_)

    # -- helpers ----------------------------------------------------------------

    def _hex(self, content_hash: str) -> str:
        if self._entered == 0:
            if self._closed:
                raise ClosedResourceError(f"{self!r} was closed; create a new one to reopen it")
            raise ClosedResourceError(
                f"{self!r} is not open: use it inside 'async with store:' "
                "(a Tapestry opens the data store it is given)"
            )
        return hash_hex(content_hash)

    @contextmanager
    def _translating(self, action: str) -> Generator[None]:
        try:
            yield
        except self._driver_errors as exc:
            raise BackendError(
                f"{self._url}: cannot {action}: {type(exc).__name__}: {exc}"
            ) from exc
