"""Knot definitions in PostgreSQL (asyncpg), with LISTEN/NOTIFY for changes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self

import anyio

from pirn_like._errors import MissingExtraError
from pirn_like.backends._closing import closing_on_error
from pirn_like.backends._knot_definitions import ModuleImports
from pirn_like.backends._persistent_store import (
    Database,
    PersistentStore,
    SQLDefinitions,
    SQLFlavor,
)
from pirn_like.backends._postgres import open_pool_session
from pirn_like.backends._sql import POSTGRES, parse_url
from pirn_like.protocols import Serializer

if TYPE_CHECKING:
    import asyncpg

__all__ = ["PostgresStore"]

CHANNEL = "pirn_like_knots"
"""Every write notifies this channel once per changed knot, with the knot id as payload."""

_FLAVOR = SQLFlavor(
    dialect=POSTGRES,
    # The row lock makes writers take turns, so seq order is commit order.
    lock_sequence="SELECT seq FROM pirn_like_knot_sequence FOR UPDATE",
    stored_among="SELECT knot_id, fingerprint, revision FROM pirn_like_knot_definitions "
    "WHERE knot_id = ANY($1::text[])",
    bind_ids=list,
    announce=f"SELECT pg_notify('{CHANNEL}', $1)",
)


class PostgresStore(PersistentStore):
    """A TapestryStore in PostgreSQL (``pip install 'pirn-like[postgres]'``).

    ``dsn`` is a ``postgresql://`` (or ``postgres://``) URL, passed to asyncpg as is
    (``?host=/socket/dir`` and ``?sslmode=...`` work). Every client of the database
    shares the knots in it: writes ``NOTIFY`` the channel ``pirn_like_knots`` (payload:
    the knot id) and each open store ``LISTEN``s on a connection of its own. See
    ``PersistentStore`` for what ``add`` and ``sync`` promise, ``serializer`` and
    ``import_modules``. The database runs on the store's own asyncio loop, so the store
    works under asyncio and trio.
    """

    def __init__(
        self,
        dsn: str,
        *,
        serializer: Serializer | None = None,
        import_modules: ModuleImports = False,
        connect_timeout: float = 10.0,
    ) -> None:
        if not connect_timeout > 0:
            raise ValueError(
                f"connect_timeout must be a positive number of seconds, got {connect_timeout}"
            )
        self._dsn = dsn
        self.connect_timeout = connect_timeout
        super().__init__(url=dsn, serializer=serializer, import_modules=import_modules)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Self:
        """``postgresql://user:password@host:port/database`` (or ``postgres://``);
        ``options`` go to the constructor."""
        parse_url(url, ("postgresql", "postgres"), cls.__name__)
        return cls(url, **options)

    async def _connect(self) -> Database:
        try:
            import asyncpg
        except ImportError as exc:
            raise MissingExtraError(type(self).__name__, "postgres", "asyncpg") from exc
        # Listening first: a knot written while the store catches up is announced here.
        # asyncpg takes seconds as a float; its unannotated default (60) reads as int.
        timeout: Any = self.connect_timeout
        listener = await asyncpg.connect(self._dsn, timeout=timeout)
        async with closing_on_error(listener.close):
            watch = _NotifyWatch(listener)
            await listener.add_listener(CHANNEL, watch.notified)
            session = await open_pool_session(
                self._dsn, owner=type(self).__name__, min_size=1, max_size=1, timeout=timeout
            )
            db = SQLDefinitions(session, _FLAVOR, watch)
            async with closing_on_error(session.aclose):
                await db.migrate(url=self.url)
        return db


class _NotifyWatch:
    """Wakes when the listening connection receives a notification."""

    def __init__(self, listener: asyncpg.Connection) -> None:
        self._listener = listener
        self._event = anyio.Event()

    def notified(self, *_: object) -> None:
        self._event.set()

    async def wait(self) -> None:
        await self._event.wait()
        self._event = anyio.Event()

    async def aclose(self) -> None:
        await self._listener.close()
