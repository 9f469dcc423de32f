"""Knot definitions in a SQLite file (aiosqlite)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any, Self

import anyio

from pirn_like.backends._closing import closing_on_error
from pirn_like.backends._knot_definitions import ModuleImports
from pirn_like.backends._persistent_store import (
    Database,
    PersistentStore,
    SQLDefinitions,
    SQLFlavor,
)
from pirn_like.backends._sql import SQLITE, Session, database_path
from pirn_like.backends._sqlite import open_sqlite
from pirn_like.protocols import Serializer

__all__ = ["SQLiteStore"]

_FLAVOR = SQLFlavor(
    dialect=SQLITE,
    # BEGIN IMMEDIATE already holds the write lock.
    lock_sequence="SELECT seq FROM pirn_like_knot_sequence",
    stored_among="SELECT knot_id, fingerprint, revision FROM pirn_like_knot_definitions "
    "WHERE knot_id IN (SELECT value FROM json_each(?))",
    bind_ids=json.dumps,
)


class SQLiteStore(PersistentStore):
    """A TapestryStore in a SQLite file (``pip install 'pirn-like[sqlite]'``).

    Every process that opens the file shares the knots in it: the store checks
    SQLite's ``data_version`` every ``poll_interval`` seconds and loads what other
    connections wrote. Writers take turns (WAL mode, ``BEGIN IMMEDIATE``, waiting up to
    ``busy_timeout`` seconds). See ``PersistentStore`` for what ``add`` and ``sync``
    promise, ``serializer`` (constants; default ``SafeSerializer()``) and
    ``import_modules``. The database runs on the store's own asyncio loop, so the
    store works under asyncio and trio.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        serializer: Serializer | None = None,
        import_modules: ModuleImports = False,
        poll_interval: float = 0.05,
        busy_timeout: float = 30.0,
    ) -> None:
        if not poll_interval > 0:
            raise ValueError(
                f"poll_interval must be a positive number of seconds, got {poll_interval}"
            )
        if busy_timeout < 0:
            raise ValueError(f"busy_timeout must be at least 0 seconds, got {busy_timeout}")
        self.path = os.fspath(path)
        self.poll_interval = poll_interval
        self.busy_timeout = busy_timeout
        super().__init__(
            url=f"sqlite:///{self.path}", serializer=serializer, import_modules=import_modules
        )

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Self:
        """``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``; ``options``
        go to the constructor."""
        return cls(database_path(url, "sqlite", cls.__name__, example="knots.db"), **options)

    async def _connect(self) -> Database:
        session = await open_sqlite(
            self.path, busy_timeout=self.busy_timeout, owner=type(self).__name__
        )
        async with closing_on_error(session.aclose):
            watch = _DataVersionWatch(session, self.poll_interval)
            await watch.start()
            db = SQLDefinitions(session, _FLAVOR, watch)
            await db.migrate(url=self.url)
        return db


class _DataVersionWatch:
    """SQLite's ``data_version`` changes when another connection commits to the file."""

    def __init__(self, session: Session, interval: float) -> None:
        self._session = session
        self._interval = interval
        self._seen: Sequence[Any] = ()

    async def start(self) -> None:
        self._seen = await self._session.fetch("PRAGMA data_version")

    async def wait(self) -> None:
        while True:
            await anyio.sleep(self._interval)
            now = await self._session.fetch("PRAGMA data_version")
            if now != self._seen:
                self._seen = now
                return

    async def aclose(self) -> None:
        """Nothing of its own to close: the session is the store's."""
