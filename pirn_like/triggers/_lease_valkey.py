"""Leases in ValKey (or Redis), through valkey-glide: a key with an expiry per term."""

from __future__ import annotations

from typing import TYPE_CHECKING, Self, cast

from pirn_like._errors import MissingExtraError
from pirn_like.backends._valkey import ValKeyServer, parse_valkey_url
from pirn_like.triggers._lease_store import StoredLease

if TYPE_CHECKING:
    from glide import GlideClient, Script, TEncodable

__all__ = ["ValKeyLease"]

# Each script reads and changes the keys of one lease atomically.
# KEYS: the term key (``holder#token``, expiring), the token counter, the value.
# ARGV: holder, this holder's token ('' if none), ttl in ms [, value].

# Extend this holder's live term, or start a new one if there is none (SET NX PX).
_TAKE = """
local current = redis.call('GET', KEYS[1])
if current then
  if ARGV[2] ~= '' and current == ARGV[1] .. '#' .. ARGV[2] then
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
    return tonumber(ARGV[2])
  end
  return 0
end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '#' .. token, 'NX', 'PX', ARGV[3])
return token
"""
_EXTEND = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] .. '#' .. ARGV[2] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""
_END = """
if redis.call('GET', KEYS[1]) == ARGV[1] .. '#' .. ARGV[2] then redis.call('DEL', KEYS[1]) end
return 1
"""
_WRITE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] .. '#' .. ARGV[2] then return 0 end
redis.call('SET', KEYS[3], ARGV[4])
return 1
"""


class ValKeyLease(StoredLease):
    """A ``Lease`` in ValKey or Redis (``pip install 'pirn-like[valkey]'``) at ``url``:
    ``valkey://[user[:password]@]host[:port][/db]`` (``valkeys://`` for TLS).

    Under ``<key_prefix><name>``: the term (``holder#token``, expiring after ``ttl``
    by the server's clock), ``…:token`` (the fencing counter) and ``…:value``. Each
    operation is one Lua script, so it sees and changes the keys at one instant. A
    standalone server (not a cluster). ``timeout`` bounds each request, in seconds.
    Works on asyncio and trio.
    """

    _client: GlideClient

    def __init__(
        self,
        url: str,
        name: str,
        *,
        holder: str | None = None,
        ttl: float = 15.0,
        key_prefix: str = "pirn_like:lease:",
        timeout: float = 2.0,
    ) -> None:
        self._server = ValKeyServer(**parse_valkey_url(url), timeout=timeout)
        super().__init__(name, holder=holder, ttl=ttl, url=self._server.url)
        base = f"{key_prefix}{name}"
        self._keys: list[TEncodable] = [base, f"{base}:token", f"{base}:value"]

    @classmethod
    def from_url(cls, url: str, name: str, *, holder: str | None = None, ttl: float = 15.0) -> Self:
        """``valkey://[user[:password]@]host[:port][/db]`` (also ``redis://``, and
        ``valkeys://``/``rediss://`` for TLS)."""
        return cls(url, name, holder=holder, ttl=ttl)

    async def _connect(self) -> None:
        try:
            import glide
        except ImportError as exc:
            raise MissingExtraError(type(self).__name__, "valkey", "valkey-glide") from exc
        self._driver_errors = (glide.GlideError,)
        self._scripts: dict[str, Script] = {
            name: glide.Script(code)
            for name, code in (
                ("take", _TAKE),
                ("extend", _EXTEND),
                ("end", _END),
                ("write", _WRITE),
            )
        }
        self._client = await glide.GlideClient.create(self._server.client_config())

    async def _disconnect(self) -> None:
        await self._client.close()

    async def _run(self, script: str, token: int | None, *extra: str) -> int:
        args: list[TEncodable] = [self.holder, "" if token is None else str(token)]
        args += [str(self.ttl_ms), *extra]
        found = await self._client.invoke_script(self._scripts[script], keys=self._keys, args=args)
        return int(cast(int, found))

    async def _take(self, token: int | None) -> int | None:
        return await self._run("take", token) or None

    async def _extend(self, token: int) -> bool:
        return await self._run("extend", token) == 1

    async def _end(self, token: int) -> None:
        await self._run("end", token)

    async def _write(self, token: int, value: str) -> bool:
        return await self._run("write", token, value) == 1

    async def _current_holder(self) -> str | None:
        found = await self._client.get(self._keys[0])
        return None if found is None else found.decode().rpartition("#")[0]

    async def _read(self) -> str | None:
        found = await self._client.get(self._keys[2])
        return None if found is None else found.decode()
