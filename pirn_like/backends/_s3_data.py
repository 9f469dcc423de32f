"""Values kept as objects in an S3 bucket (or any S3-compatible store), through aiobotocore."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Any, Protocol, Self, cast
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from pirn_like._errors import BackendError, MissingExtraError
from pirn_like.backends._blob_data import BlobDataStore
from pirn_like.protocols import Serializer

__all__ = ["S3DataStore"]

_Response = dict[str, Any]


class _S3Client(Protocol):
    """The part of aiobotocore's S3 client this store uses."""

    async def head_bucket(self, *, Bucket: str) -> _Response: ...
    async def head_object(self, *, Bucket: str, Key: str) -> _Response: ...
    async def get_object(self, *, Bucket: str, Key: str) -> _Response: ...
    async def put_object(self, *, Bucket: str, Key: str, Body: bytes) -> _Response: ...
    async def delete_object(self, *, Bucket: str, Key: str) -> _Response: ...


class S3DataStore(BlobDataStore):
    """A DataStore with one object per value, at ``<prefix>/<hex>`` in ``bucket``.

    Credentials come from the standard AWS chain (environment, profile, instance
    role) unless given; they never appear in ``url`` or in messages. Opening checks
    that the bucket is reachable. Runs on asyncio only (aiobotocore needs it).
    """

    _client: _S3Client
    _resources: AsyncExitStack

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        serializer: Serializer | None = None,
    ) -> None:
        if not bucket or "/" in bucket:
            raise ValueError(f"bucket must be a bucket name, got {bucket!r}")
        self._bucket = bucket
        self._prefix = prefix.strip("/")
        self._endpoint_url = endpoint_url
        self._region = region
        self._access_key = aws_access_key_id
        self._secret_key = aws_secret_access_key
        options = {"endpoint": endpoint_url, "region": region}
        query = "&".join(f"{k}={quote(v, safe=':/')}" for k, v in options.items() if v)
        url = f"s3://{bucket}/{self._prefix}" + (f"?{query}" if query else "")
        super().__init__(url=url, serializer=serializer)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        serializer: Serializer | None = None,
    ) -> Self:
        """``s3://bucket[/prefix][?endpoint=http://host:port&region=name]``.

        Credentials are not accepted in the URL (URLs end up in logs): pass them as
        arguments or let the AWS chain find them.
        """
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        if (
            parts.scheme.lower() != "s3"
            or not parts.hostname
            or "@" in parts.netloc
            or not set(query) <= {"endpoint", "region"}
        ):
            # The URL itself is not echoed: it may hold credentials it should not.
            raise ValueError(
                "expected an S3 URL of the form "
                "s3://bucket[/prefix][?endpoint=http://host:port&region=name], without "
                f"credentials; got one with scheme {parts.scheme!r} and options {sorted(query)}"
            )
        return cls(
            parts.netloc,
            unquote(parts.path),
            endpoint_url=query.get("endpoint"),
            region=query.get("region"),
            aws_access_key_id=aws_access_key_id,
            aws_secret_access_key=aws_secret_access_key,
            serializer=serializer,
        )

    def _key(self, hex_: str) -> str:
        return f"{self._prefix}/{hex_}" if self._prefix else hex_

    async def _open(self) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise BackendError(
                f"{self.url}: S3DataStore runs on asyncio only (aiobotocore)"
            ) from None
        try:
            from aiobotocore.session import get_session
            from botocore.config import Config
            from botocore.exceptions import BotoCoreError, ClientError
        except ImportError as exc:
            raise MissingExtraError("S3DataStore", "s3", "aiobotocore") from exc
        self._driver_errors = (BotoCoreError, ClientError)
        async with AsyncExitStack() as resources:
            client = await resources.enter_async_context(
                get_session().create_client(
                    "s3",
                    endpoint_url=self._endpoint_url,
                    region_name=self._region,
                    aws_access_key_id=self._access_key,
                    aws_secret_access_key=self._secret_key,
                    config=Config(retries={"mode": "standard"}),
                )
            )
            self._client = cast(_S3Client, client)
            await self._client.head_bucket(Bucket=self._bucket)
            self._resources = resources.pop_all()

    async def _close(self) -> None:
        await self._resources.aclose()

    async def _read(self, hex_: str) -> bytes | None:
        try:
            response = await self._client.get_object(Bucket=self._bucket, Key=self._key(hex_))
        except Exception as exc:
            if _is_missing(exc):
                return None
            raise
        async with response["Body"] as body:
            return await body.read()

    async def _write(self, hex_: str, data: bytes) -> None:
        await self._client.put_object(Bucket=self._bucket, Key=self._key(hex_), Body=data)

    async def _exists(self, hex_: str) -> bool:
        try:
            await self._client.head_object(Bucket=self._bucket, Key=self._key(hex_))
        except Exception as exc:
            if _is_missing(exc):
                return False
            raise
        return True

    async def _remove(self, hex_: str) -> bool:
        # S3 deletes succeed whether or not the object was there: ask first.
        if not await self._exists(hex_):
            return False
        await self._client.delete_object(Bucket=self._bucket, Key=self._key(hex_))
        return True


def _is_missing(exc: Exception) -> bool:
    """Whether a botocore error is S3's 'no such object' (404)."""
    response: Any = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    return response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404
