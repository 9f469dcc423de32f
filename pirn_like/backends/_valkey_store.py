"""Knot definitions in ValKey (or Redis), through valkey-glide, with pub/sub for changes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Self, cast

from pirn_like._errors import MissingExtraError
from pirn_like._ids import KnotId
from pirn_like.backends._closing import closing_on_error
from pirn_like.backends._knot_definitions import KnotDefinition, ModuleImports
from pirn_like.backends._persistent_store import (
    Database,
    PersistentStore,
    StoredDefinition,
    newer_schema,
)
from pirn_like.backends._valkey import ValKeyServer, parse_valkey_url
from pirn_like.protocols import Serializer

if TYPE_CHECKING:
    from glide import GlideClient, Script, TEncodable

__all__ = ["ValKeyStore"]
_SCHEMA_VERSION = 1

# KEYS: the seq counter, the log (id -> seq), then one hash per definition.
# ARGV: the channel, then id, document, fingerprint per definition.
# Returns the revision stored for each definition.
_WRITE = """
local revisions = {}
for i = 1, #KEYS - 2 do
  local key = KEYS[i + 2]
  local id, document, fingerprint = ARGV[3 * i - 1], ARGV[3 * i], ARGV[3 * i + 1]
  local current = redis.call('HMGET', key, 'fingerprint', 'revision')
  if current[1] == fingerprint then
    revisions[i] = tonumber(current[2])
  else
    local revision = (tonumber(current[2]) or 0) + 1
    local seq = redis.call('INCR', KEYS[1])
    redis.call('HSET', key, 'document', document, 'fingerprint', fingerprint,
               'revision', revision, 'seq', seq)
    redis.call('ZADD', KEYS[2], seq, id)
    redis.call('PUBLISH', ARGV[1], id)
    revisions[i] = revision
  end
end
return revisions
"""

# KEYS: the log. ARGV: the last seq seen, the prefix of definition hashes.
# Returns {id, document, revision, seq} per definition written after that seq. One
# script, so the log and the hashes are read at one instant.
_READ = """
local rows = {}
for i, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')) do
  local row = redis.call('HMGET', ARGV[2] .. id, 'document', 'revision', 'seq')
  rows[i] = {id, row[1], row[2], row[3]}
end
return rows
"""


class ValKeyStore(PersistentStore):
    """A TapestryStore in ValKey or Redis (``pip install 'pirn-like[valkey]'``).

    Under ``key_prefix``: a hash per knot (``knot:<id>``: document, fingerprint,
    revision, seq), ``seq`` (the counter), ``log`` (a sorted set of ids by seq) and
    ``schema``. Writes run as one Lua script and publish each changed id on the
    channel ``<key_prefix>changes``, which every open store subscribes to. A standalone
    server (not a cluster): the scripts read keys they compute. ``timeout`` bounds each
    request, in seconds. See ``PersistentStore`` for what ``add`` and ``sync`` promise,
    ``serializer`` and ``import_modules``. The client runs on the store's own asyncio
    loop, so the store works under asyncio and trio.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 6379,
        *,
        db: int = 0,
        username: str | None = None,
        password: str | None = None,
        use_tls: bool = False,
        key_prefix: str = "pirn_like:store:",
        timeout: float = 10.0,
        serializer: Serializer | None = None,
        import_modules: ModuleImports = False,
    ) -> None:
        self._server = ValKeyServer(
            host,
            port,
            db=db,
            username=username,
            password=password,
            use_tls=use_tls,
            timeout=timeout,
        )
        self.key_prefix = key_prefix
        super().__init__(url=self._server.url, serializer=serializer, import_modules=import_modules)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Self:
        """``valkey://[user[:password]@]host[:port][/db]``; ``redis://`` means the same,
        ``valkeys://`` and ``rediss://`` use TLS. ``options`` go to the constructor."""
        return cls(**parse_valkey_url(url), **options)

    async def _connect(self) -> Database:
        try:
            import glide
        except ImportError as exc:
            raise MissingExtraError(type(self).__name__, "valkey", "valkey-glide") from exc
        channel = f"{self.key_prefix}changes"
        modes = glide.GlideClientConfiguration.PubSubChannelModes
        subscriptions = glide.GlideClientConfiguration.PubSubSubscriptions(
            channels_and_patterns={modes.Exact: {channel}}, callback=None, context=None
        )
        # Subscribed first: a knot written while the store catches up is announced here.
        subscriber = await glide.GlideClient.create(self._server.client_config(subscriptions))
        async with closing_on_error(subscriber.close):
            client = await glide.GlideClient.create(self._server.client_config())
            db = _ValKeyDefinitions(client, subscriber, self.key_prefix, channel, glide.Script)
            async with closing_on_error(client.close):
                await db.migrate(url=self.url)
        return db


class _ValKeyDefinitions:
    def __init__(
        self,
        client: GlideClient,
        subscriber: GlideClient,
        prefix: str,
        channel: str,
        script: type[Script],
    ) -> None:
        self._client = client
        self._subscriber = subscriber
        self._prefix = prefix
        self._channel = channel
        self._write = script(_WRITE)
        self._read = script(_READ)

    async def migrate(self, *, url: str) -> None:
        key = f"{self._prefix}schema"
        await self._client.custom_command(["SET", key, str(_SCHEMA_VERSION), "NX"])
        found = await self._client.get(key)
        if found is not None and int(found) > _SCHEMA_VERSION:
            raise newer_schema(int(found), _SCHEMA_VERSION, url=url)

    async def write(self, definitions: Sequence[KnotDefinition]) -> list[int]:
        keys: list[TEncodable] = [f"{self._prefix}seq", f"{self._prefix}log"]
        args: list[TEncodable] = [self._channel]
        for d in definitions:
            keys.append(f"{self._prefix}knot:{d.knot_id}")
            args += [d.knot_id, d.document, d.fingerprint]
        revisions = await self._client.invoke_script(self._write, keys=keys, args=args)
        return [int(r) for r in cast(list[int], revisions)]

    async def read_since(self, seq: int) -> list[StoredDefinition]:
        log: list[TEncodable] = [f"{self._prefix}log"]
        args: list[TEncodable] = [str(seq), f"{self._prefix}knot:"]
        rows = await self._client.invoke_script(self._read, keys=log, args=args)
        return [
            StoredDefinition(KnotId(kid.decode()), doc.decode(), int(rev), int(s))
            for kid, doc, rev, s in cast(list[tuple[bytes, bytes, bytes, bytes]], rows)
        ]

    async def wait_for_change(self) -> None:
        await self._subscriber.get_pubsub_message()

    async def aclose(self) -> None:
        try:
            await self._subscriber.close()
        finally:
            await self._client.close()
