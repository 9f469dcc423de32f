"""Bridge cursors in ValKey (or Redis): one hash, a field per bridge name."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, TypeVar

from pirn_like._errors import BackendError, MissingExtraError
from pirn_like.backends._url import redact
from pirn_like.backends._valkey import ValKeyServer, parse_valkey_url
from pirn_like.capabilities.events._bridge_cursor import _check_name, _check_seq
from pirn_like.capabilities.events._bridge_lifecycle import LazyResource

if TYPE_CHECKING:
    from glide import GlideClient, Script

__all__ = ["ValKeyBridgeCursor"]

_T = TypeVar("_T")

# Raise the position only: a stale writer never moves a cursor back. KEYS: the hash;
# ARGV: name, seq.
_SAVE = """
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) > current then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 1
"""


class ValKeyBridgeCursor(LazyResource):
    """Cursors in the ValKey hash ``key`` at ``url`` (``pip install 'pirn-like[valkey]'``):
    ``valkey://[user[:password]@]host[:port][/db]`` (``valkeys://`` for TLS). Each save is
    one Lua script, so concurrent saves keep the highest position. Durable as far as the
    server persists its data (AOF/RDB). Opens lazily; works on asyncio and trio.
    """

    def __init__(
        self, url: str, *, key: str = "pirn_like:bridge_cursors", timeout: float = 5.0
    ) -> None:
        if not isinstance(key, str) or not key:
            raise ValueError(f"ValKeyBridgeCursor: key must be a non-empty string, got {key!r}")
        self._server = ValKeyServer(**parse_valkey_url(url), timeout=timeout)
        self._url = url
        self.key = key
        self._client: GlideClient | None = None
        self._script: Script | None = None
        super().__init__()

    @property
    def identity(self) -> str:
        """The server (URL redacted) and hash key."""
        return f"{redact(self._url)}#{self.key}"

    def __repr__(self) -> str:
        return f"ValKeyBridgeCursor({self.identity!r})"

    async def load(self, name: str) -> int:
        client = await self._client_ready()
        found = await self._call("read", client.hget(self.key, _check_name(name)))
        return 0 if found is None else int(found)

    async def save(self, name: str, seq: int) -> None:
        name, seq = _check_name(name), _check_seq(seq)
        client = await self._client_ready()
        assert self._script is not None
        await self._call(
            "write", client.invoke_script(self._script, keys=[self.key], args=[name, str(seq)])
        )

    async def _call(self, action: str, request: Awaitable[_T]) -> _T:
        import glide

        try:
            return await request
        except glide.GlideError as exc:
            raise BackendError(f"{self!r} could not {action} a cursor: {exc}") from exc

    async def _client_ready(self) -> GlideClient:
        await self._ready()
        assert self._client is not None
        return self._client

    async def _connect(self) -> None:
        try:
            import glide
        except ImportError as exc:
            raise MissingExtraError("ValKeyBridgeCursor", "valkey", "valkey-glide") from exc
        self._script = glide.Script(_SAVE)
        try:
            self._client = await glide.GlideClient.create(self._server.client_config())
        except glide.GlideError as exc:
            raise BackendError(f"{self!r} could not connect: {exc}") from exc

    async def _disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()
