"""What the persistent TapestryStores share: knots in memory at once, written to a
database in the background, and knots other processes write loaded as they arrive.

A subclass says how to connect (``_connect`` returns a ``Database``); the rest is the
same for SQLite, PostgreSQL and ValKey:

- ``add`` keeps the knot in memory, bumps ``version`` and calls listeners at once (so
  wiring and planning stay synchronous) and queues its definition for writing.
- While open, a background task writes queued definitions in batches and waits for
  the database to report definitions written elsewhere; it reads them, builds knots
  from them and hands them to the event loop that opened the store, which caches
  them, bumps ``version`` and calls the listeners there.
- Every definition row carries a ``revision`` (per id) and a ``seq`` (one counter for
  the whole store, increasing in commit order); a store reads ``seq > last seen``.

The database client runs on an asyncio loop of the store's own, in a thread started
when the store opens (anyio's blocking portal). So the store works under asyncio and
trio alike, and may be closed from another task than the one that opened it.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, Self
from urllib.parse import urlsplit

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
from anyio.abc import TaskStatus
from anyio.lowlevel import EventLoopToken

from pirn_like._errors import (
    BackendError,
    ClosedResourceError,
    PirnLikeError,
    SchemaVersionError,
    SerializationError,
)
from pirn_like._ids import KnotId
from pirn_like.backends._closing import closing_on_error
from pirn_like.backends._knot_definitions import DefinitionCodec, KnotDefinition, ModuleImports
from pirn_like.backends._memory_store import KnotRegistry, should_register
from pirn_like.backends._sql import Dialect, Session, migrate_schema
from pirn_like.backends._url import redact
from pirn_like.core._knot import Knot
from pirn_like.core._serialization import SafeSerializer
from pirn_like.protocols import Serializer

__all__ = [
    "Database",
    "PersistentStore",
    "SQLDefinitions",
    "SQLFlavor",
    "StoredDefinition",
    "StoredState",
    "newer_schema",
    "plan_writes",
]

_log = logging.getLogger("pirn_like.store")
_RETRY_SECONDS = 1.0
"""After a failed exchange with the database, try again this much later."""


@dataclass(frozen=True, slots=True)
class StoredDefinition:
    """A definition as read from the database."""

    knot_id: KnotId
    document: str
    revision: int
    seq: int


@dataclass(frozen=True, slots=True)
class StoredState:
    """What a write compares against: the stored fingerprint and revision of an id."""

    fingerprint: str
    revision: int


class Database(Protocol):
    """A store's connection to its database. Used on the store's own event loop, by
    one task at a time (``wait_for_change`` excepted, which runs alongside)."""

    async def write(self, definitions: Sequence[KnotDefinition]) -> list[int]:
        """Store the definitions in one transaction and return the revision now stored
        for each. An id whose stored fingerprint is equal is left alone; otherwise its
        row is replaced with the next revision and the next ``seq``, and other stores
        are told."""
        ...

    async def read_since(self, seq: int) -> list[StoredDefinition]:
        """The definitions whose ``seq`` is above ``seq``, in ``seq`` order."""
        ...

    async def wait_for_change(self) -> None:
        """Return when another client may have written definitions."""
        ...

    async def aclose(self) -> None: ...


def plan_writes(
    definitions: Sequence[KnotDefinition], stored: Mapping[str, StoredState], seq: int
) -> tuple[list[tuple[KnotDefinition, int, int]], list[int], int]:
    """What a write changes: the rows to upsert as (definition, revision, seq), the
    revision of every definition afterwards, and the store's last ``seq``."""
    rows: list[tuple[KnotDefinition, int, int]] = []
    revisions: list[int] = []
    for definition in definitions:
        current = stored.get(definition.knot_id)
        if current is not None and current.fingerprint == definition.fingerprint:
            revisions.append(current.revision)
            continue
        seq += 1
        revision = 1 if current is None else current.revision + 1
        rows.append((definition, revision, seq))
        revisions.append(revision)
    return rows, revisions, seq


def newer_schema(found: int, latest: int, *, url: str) -> SchemaVersionError:
    """The error for a knot store at ``url`` whose schema version ``found`` is above
    ``latest``, the newest this pirn_like knows."""
    return SchemaVersionError(
        f"the knot store at {url} has schema version {found}, newer than the {latest} this "
        "pirn_like knows: upgrade pirn_like to use it"
    )


class _State(enum.Enum):
    NEW = "new"
    OPEN = "open"
    CLOSED = "closed"


_Arrival = tuple[KnotId, Knot | SerializationError]


class PersistentStore(KnotRegistry, ABC):
    """A TapestryStore kept in a database and shared by every process that opens it.

    ``add`` works before the store is opened (knots are written when it opens) and
    refuses a second knot under an id this process already added (``WiringError``, as
    in memory). An id that another process (or an earlier run) stored is different:
    an equal definition (same class, config, wiring and config hash) is left as it is,
    so re-running a wiring script works, and a different one replaces it as the next
    revision. Knots written elsewhere reach ``knots()`` and the listeners (on the event
    loop that opened the store) while the store is open, and at once after
    ``await sync()``.

    Reading a definition imports no module unless ``import_modules`` allows it (True,
    or package prefixes): classes and functions are looked up among the modules this
    process has imported. A definition that cannot be read is logged and listed by
    ``unresolved()``; the others load.

    The store may be entered by several ``async with`` blocks at once: it opens on the
    first and closes (after writing what is queued) when the last one ends; it cannot
    be opened again after that.
    """

    def __init__(
        self,
        *,
        url: str,
        serializer: Serializer | None,
        import_modules: ModuleImports,
    ) -> None:
        super().__init__()
        self._url = redact(url)
        self._password = urlsplit(url).password
        self._codec = DefinitionCodec(
            serializer if serializer is not None else SafeSerializer(),
            import_modules=import_modules,
        )
        # Used on the event loop that opened the store (or by the wiring code before),
        # as are the registry's knots, version and listeners.
        self._added_here: set[KnotId] = set()
        self._unresolved: dict[KnotId, str] = {}
        self._state = _State.NEW
        self._entered = 0
        self._lifecycle = anyio.Lock()
        self._host_token: EventLoopToken | None = None
        # Shared with the store's thread, under _mutex.
        self._mutex = threading.Lock()
        self._pending: dict[KnotId, Knot] = {}
        self._failures: list[PirnLikeError] = []
        # The store's thread and loop.
        self._portal_cm: AbstractContextManager[anyio.from_thread.BlockingPortal] | None = None
        self._portal: anyio.from_thread.BlockingPortal | None = None
        self._served: Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: anyio.Event | None = None
        self._stop: anyio.CancelScope | None = None
        self._db: Database | None = None
        self._exchanging: anyio.Lock | None = None
        self._cursor = 0
        self._revisions: dict[KnotId, int] = {}

    @property
    def url(self) -> str:
        """Where the definitions are kept, with any password redacted."""
        return self._url

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._url!r})"

    @abstractmethod
    async def _connect(self) -> Database:
        """Connect and bring the schema up to date (on the store's own loop)."""

    # -- TapestryStore ------------------------------------------------------------

    def add(self, knot: Knot) -> None:
        """Keep ``knot`` and queue it for writing. ``WiringError`` if this process
        already added another knot with its id; ``SerializationError`` (naming the knot
        and the argument) if it cannot be stored."""
        # A knot loaded from the database, not added here, gives way to a new definition.
        replaceable = knot.id not in self._added_here
        if not should_register(knot, self._knots.get(knot.id), replaceable=replaceable):
            return
        if self._state is _State.CLOSED:
            raise ClosedResourceError(
                f"{self!r} is closed: knot {knot.id!r} would never be written; add knots "
                "before the store closes"
            )
        # Fail here, at the line that builds the knot, rather than in the background.
        self._codec.encode(knot)
        self._added_here.add(knot.id)
        with self._mutex:
            self._pending[knot.id] = knot
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake)
        self._register(knot)

    def unresolved(self) -> Mapping[KnotId, str]:
        """Stored definitions this process could not read, by id, with the reason. One is
        read again when it is written again, or when a new store opens the database."""
        return dict(self._unresolved)

    async def sync(self) -> None:
        """Write every knot added so far and load every knot written elsewhere so far.

        Raises what went wrong with writing since the last ``sync``: ``SerializationError``
        for a knot that could not be stored, ``BackendError`` if the database failed.
        """
        portal = self._portal
        if self._state is not _State.OPEN or portal is None:
            raise ClosedResourceError(
                f"{self!r} is {self._state.value}: use it inside `async with store:` "
                "(or a tapestry that opens it)"
            )
        await anyio.to_thread.run_sync(portal.call, self._exchange)
        self._raise_failures()

    # -- lifecycle ------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        async with self._lifecycle:
            if self._state is _State.CLOSED:
                raise ClosedResourceError(f"{self!r} was closed; build a new store to reopen it")
            if self._entered == 0:
                await self._open()
            self._entered += 1
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        async with self._lifecycle:
            self._entered -= 1
            if self._entered > 0:
                return
            with anyio.CancelScope(shield=True):
                await self._close()
        if exc_info[0] is None:
            self._raise_failures()

    async def _open(self) -> None:
        self._host_token = anyio.lowlevel.current_token()
        cm = anyio.from_thread.start_blocking_portal("asyncio", name=f"pirn_like {self!r}")
        portal = await anyio.to_thread.run_sync(cm.__enter__)
        async with closing_on_error(lambda: anyio.to_thread.run_sync(_exit_portal, cm)):
            served, _ = await anyio.to_thread.run_sync(portal.start_task, self._serve)
        self._portal_cm, self._portal, self._served = cm, portal, served
        self._state = _State.OPEN

    async def _close(self) -> None:
        self._state = _State.CLOSED
        portal, served, cm = self._portal, self._served, self._portal_cm
        if portal is None or served is None or cm is None:
            return
        try:
            await anyio.to_thread.run_sync(portal.call, self._request_stop)
            await anyio.to_thread.run_sync(served.result)
        finally:
            await anyio.to_thread.run_sync(_exit_portal, cm)
            self._portal = self._served = self._portal_cm = None
            self._loop = None

    def _raise_failures(self) -> None:
        with self._mutex:
            failures, self._failures = self._failures, []
        if failures:
            raise failures[0]

    # -- the store's own loop ---------------------------------------------------------

    async def _serve(self, *, task_status: TaskStatus[None]) -> None:
        """The store's life on its loop: connect, catch up, watch; write what is left."""
        with self._translating("open the store"):
            db = await self._connect()
        self._db = db
        # Made here, not in __init__: they belong to this loop, not the one that built the store.
        self._wakeup = anyio.Event()
        self._exchanging = anyio.Lock()
        self._loop = asyncio.get_running_loop()
        try:
            await self._exchange()
        except BaseException:
            self._loop = None  # the store did not open: add() must not wake this loop
            with anyio.CancelScope(shield=True):
                await db.aclose()
            raise
        try:
            with anyio.CancelScope() as self._stop:
                task_status.started()
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._watch)
                    await self._write_and_read_on_wakeup()
        finally:
            with anyio.CancelScope(shield=True):
                try:
                    await self._exchange_under_lock(read=False)
                except PirnLikeError as exc:
                    with self._mutex:
                        self._failures.append(exc)
                finally:
                    await db.aclose()

    async def _request_stop(self) -> None:
        assert self._exchanging is not None
        async with self._exchanging:  # let a write in progress finish first
            if self._stop is not None:
                self._stop.cancel()

    def _wake(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()

    async def _watch(self) -> None:
        db = self._db
        assert db is not None
        while True:
            try:
                await db.wait_for_change()
            except Exception:
                _log.exception("%r: waiting for changes failed; checking again later", self)
                await anyio.sleep(_RETRY_SECONDS)
            self._wake()

    async def _write_and_read_on_wakeup(self) -> None:
        while True:
            assert self._wakeup is not None
            await self._wakeup.wait()
            self._wakeup = anyio.Event()
            try:
                await self._exchange()
            except BackendError:
                _log.exception("%r: exchange with the database failed; retrying", self)
                await anyio.sleep(_RETRY_SECONDS)
                self._wake()

    async def _exchange(self) -> None:
        await self._exchange_under_lock(read=True)

    async def _exchange_under_lock(self, *, read: bool) -> None:
        assert self._exchanging is not None
        async with self._exchanging:
            await self._write_pending()
            if read:
                await self._read_new()

    async def _write_pending(self) -> None:
        with self._mutex:
            batch = list(self._pending.values())
        if not batch:
            return
        definitions: list[KnotDefinition] = []
        failures: list[PirnLikeError] = []
        for knot in batch:
            try:
                definitions.append(self._codec.encode(knot))
            except SerializationError as exc:
                _log.error("%r: knot %r cannot be stored: %s", self, knot.id, exc)
                failures.append(exc)
        db = self._db
        assert db is not None
        revisions: list[int] = []
        if definitions:
            with self._translating("write knot definitions"):
                revisions = await db.write(definitions)
        for definition, revision in zip(definitions, revisions, strict=True):
            self._revisions[definition.knot_id] = revision
        with self._mutex:
            for knot in batch:
                if self._pending.get(knot.id) is knot:
                    del self._pending[knot.id]
            self._failures.extend(failures)

    async def _read_new(self) -> None:
        db = self._db
        assert db is not None
        with self._translating("read knot definitions"):
            rows = await db.read_since(self._cursor)
        arrivals: list[_Arrival] = []
        for row in rows:
            self._cursor = max(self._cursor, row.seq)
            if self._revisions.get(row.knot_id) == row.revision:
                continue  # written by this store, or already read
            self._revisions[row.knot_id] = row.revision
            try:
                arrivals.append((row.knot_id, self._codec.decode(row.document)))
            except SerializationError as exc:
                arrivals.append((row.knot_id, exc))
        if arrivals:
            # From a worker thread: this loop must never block on the host's.
            await anyio.to_thread.run_sync(self._hand_over, arrivals)

    def _hand_over(self, arrivals: list[_Arrival]) -> None:
        anyio.from_thread.run_sync(self._arrive, arrivals, token=self._host_token)

    @contextmanager
    def _translating(self, action: str) -> Generator[None]:
        try:
            yield
        except PirnLikeError:
            raise
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            leaks = self._password is not None and self._password in message
            if self._password:
                message = message.replace(self._password, "***")
            error = BackendError(
                f"{type(self).__name__} at {self._url}: could not {action}: {message}"
            )
            # A driver message quoting the password must not travel along as the cause.
            raise error from (None if leaks else exc)

    # -- back in the task that opened the store ------------------------------------

    def _arrive(self, arrivals: Sequence[_Arrival]) -> None:
        for knot_id, loaded in arrivals:
            with self._mutex:
                if knot_id in self._pending:
                    continue  # added here meanwhile: that definition is written next and wins
            if isinstance(loaded, SerializationError):
                _log.warning("%r: stored knot %r is not loaded: %s", self, knot_id, loaded)
                self._unresolved[knot_id] = str(loaded)
                continue
            self._unresolved.pop(knot_id, None)
            self._knots[knot_id] = loaded
            self._version += 1
            for listener in tuple(self._listeners):
                try:
                    listener(loaded)
                except Exception:  # one listener's failure must not stop loading
                    _log.exception("%r: listener %r failed on knot %r", self, listener, knot_id)


def _exit_portal(cm: AbstractContextManager[Any]) -> None:
    cm.__exit__(None, None, None)


# -- SQL databases ------------------------------------------------------------------

SCHEMA_TABLE = "pirn_like_store_schema"
"""The store's schema version; apart from the histories' ``pirn_like_schema``, as a
history and a store may share one database."""
_SCHEMA_V1 = (
    "CREATE TABLE pirn_like_knot_definitions (knot_id TEXT PRIMARY KEY, document TEXT NOT NULL, "
    "fingerprint TEXT NOT NULL, revision BIGINT NOT NULL, seq BIGINT NOT NULL UNIQUE)",
    "CREATE TABLE pirn_like_knot_sequence (seq BIGINT NOT NULL)",
    "INSERT INTO pirn_like_knot_sequence (seq) VALUES (0)",
)
_MIGRATIONS = (_SCHEMA_V1,)
"""At index ``i``: the statements that take the schema from version ``i`` to ``i + 1``."""


class ChangeWatch(Protocol):
    """How a SQL store learns that another client wrote definitions."""

    async def wait(self) -> None: ...
    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class SQLFlavor:
    """What the store's SQL needs from one database besides the histories' ``Dialect``."""

    dialect: Dialect
    lock_sequence: str
    """Reads the last ``seq``; inside a write, it makes concurrent writers take turns."""
    stored_among: str
    """Selects ``knot_id, fingerprint, revision`` of the ids bound as one parameter."""
    bind_ids: Callable[[Sequence[str]], object]
    """That parameter, from the ids."""
    announce: str | None = None
    """Run once per written id (bound as the one parameter) to tell other clients."""


class SQLDefinitions:
    """The ``Database`` of a SQL store, over a histories' ``Session``.

    Tables: ``pirn_like_knot_definitions`` (one row per knot id: the JSON document, its
    fingerprint, revision and ``seq``), ``pirn_like_knot_sequence`` (one row: the last
    ``seq`` given out) and ``pirn_like_store_schema`` (one row: the schema version).
    """

    def __init__(self, session: Session, flavor: SQLFlavor, watch: ChangeWatch) -> None:
        self._session = session
        self._flavor = flavor
        self._watch = watch
        sql = flavor.dialect.sql
        self._upsert = sql(
            "INSERT INTO pirn_like_knot_definitions "
            "(knot_id, document, fingerprint, revision, seq) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (knot_id) DO UPDATE SET document = excluded.document, "
            "fingerprint = excluded.fingerprint, revision = excluded.revision, seq = excluded.seq"
        )
        self._advance = sql("UPDATE pirn_like_knot_sequence SET seq = ?")
        self._since = sql(
            "SELECT knot_id, document, revision, seq FROM pirn_like_knot_definitions "
            "WHERE seq > ? ORDER BY seq"
        )

    async def migrate(self, *, url: str) -> None:
        """Create or upgrade the tables; ``SchemaVersionError`` for a newer schema."""
        await migrate_schema(
            self._session,
            self._flavor.dialect,
            version_table=SCHEMA_TABLE,
            migrations=_MIGRATIONS,
            too_new=lambda found: newer_schema(found, len(_MIGRATIONS), url=url),
        )

    async def write(self, definitions: Sequence[KnotDefinition]) -> list[int]:
        flavor = self._flavor
        async with self._session.transaction() as tx:
            ((seq,),) = await tx.fetch(flavor.lock_sequence)
            ids = [d.knot_id for d in definitions]
            found = await tx.fetch(flavor.stored_among, (flavor.bind_ids(ids),))
            stored = {kid: StoredState(fp, int(rev)) for kid, fp, rev in found}
            rows, revisions, last = plan_writes(definitions, stored, int(seq))
            if rows:
                await tx.insert_rows(
                    self._upsert,
                    [(d.knot_id, d.document, d.fingerprint, rev, s) for d, rev, s in rows],
                )
                await tx.execute(self._advance, (last,))
                if flavor.announce is not None:
                    await tx.insert_rows(flavor.announce, [(d.knot_id,) for d, _, _ in rows])
        return revisions

    async def read_since(self, seq: int) -> list[StoredDefinition]:
        rows = await self._session.fetch(self._since, (seq,))
        return [StoredDefinition(KnotId(k), doc, int(rev), int(s)) for k, doc, rev, s in rows]

    async def wait_for_change(self) -> None:
        await self._watch.wait()

    async def aclose(self) -> None:
        try:
            await self._watch.aclose()
        finally:
            await self._session.aclose()
