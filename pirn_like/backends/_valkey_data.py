"""Values kept in ValKey (or Redis), through valkey-glide."""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

from pirn_like._errors import MissingExtraError
from pirn_like.backends._blob_data import BlobDataStore
from pirn_like.backends._valkey import ValKeyServer, parse_valkey_url
from pirn_like.protocols import Serializer

if TYPE_CHECKING:
    from glide import ExpirySet, GlideClient

__all__ = ["ValKeyDataStore"]


class ValKeyDataStore(BlobDataStore):
    """A DataStore with one ValKey string per value, at ``<key_prefix><hex>``.

    With ``ttl`` (seconds) values expire that long after they were last put; the
    lineage that names them stays. ``timeout`` bounds each request, in seconds.
    Works on asyncio and trio.
    """

    _client: GlideClient
    _expiry: ExpirySet | None

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 6379,
        *,
        db: int = 0,
        username: str | None = None,
        password: str | None = None,
        use_tls: bool = False,
        key_prefix: str = "pirn_like:value:",
        ttl: float | None = None,
        timeout: float = 10.0,
        serializer: Serializer | None = None,
    ) -> None:
        if ttl is not None and not ttl > 0:
            raise ValueError(f"ttl must be a positive number of seconds or None, got {ttl!r}")
        self._server = ValKeyServer(
            host,
            port,
            db=db,
            username=username,
            password=password,
            use_tls=use_tls,
            timeout=timeout,
        )
        self._key_prefix = key_prefix
        self._ttl_ms = None if ttl is None else max(1, round(ttl * 1000))
        super().__init__(url=self._server.url, serializer=serializer)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        key_prefix: str = "pirn_like:value:",
        ttl: float | None = None,
        timeout: float = 10.0,
        serializer: Serializer | None = None,
    ) -> Self:
        """``valkey://[user[:password]@]host[:port][/db]``; ``redis://`` means the same,
        ``valkeys://`` and ``rediss://`` use TLS."""
        return cls(
            **parse_valkey_url(url),
            key_prefix=key_prefix,
            ttl=ttl,
            timeout=timeout,
            serializer=serializer,
        )

    def _key(self, hex_: str) -> str:
        return self._key_prefix + hex_

    async def _open(self) -> None:
        try:
            import glide
        except ImportError as exc:
            raise MissingExtraError("ValKeyDataStore", "valkey", "valkey-glide") from exc
        self._driver_errors = (glide.GlideError,)
        self._expiry = (
            None
            if self._ttl_ms is None
            else glide.ExpirySet(glide.ExpiryType.MILLSEC, self._ttl_ms)
        )
        self._client = await glide.GlideClient.create(self._server.client_config())

    async def _close(self) -> None:
        await self._client.close()

    async def _read(self, hex_: str) -> bytes | None:
        return await self._client.get(self._key(hex_))

    async def _write(self, hex_: str, data: bytes) -> None:
        await self._client.set(self._key(hex_), data, expiry=self._expiry)

    async def _exists(self, hex_: str) -> bool:
        return await self._client.exists([self._key(hex_)]) == 1

    async def _remove(self, hex_: str) -> bool:
        return await self._client.delete([self._key(hex_)]) == 1

    async def _renew(self, hex_: str) -> bool:
        if self._ttl_ms is None:
            return await self._exists(hex_)
        return await self._client.pexpire(self._key(hex_), self._ttl_ms)
