"""``SQLEventStore``: the event store on a SQL database, over the backends'
``Session`` seam; the SQLite and PostgreSQL stores supply a connection and the lock
that makes appends take turns.

One table (default ``pirn_like_events``), never updated or deleted from::

    seq             the store-wide position, assigned as last + 1 under the write lock,
                    so seq order is commit order
    entity_type, entity_id, version      unique together (the concurrency backstop)
    kind, payload (JSON text), valid_from_us, recorded_at_us (UTC microseconds),
    actor, corrects

``<table>_schema`` holds the schema version.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Generator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from pirn_like._errors import BackendError, MissingExtraError, SchemaVersionError
from pirn_like.backends._closing import closing_on_error
from pirn_like.backends._sql import Dialect, Session, migrate_schema
from pirn_like.capabilities.events._engine import EPOCH, Clock, StoreEngine, Writer
from pirn_like.capabilities.events._models import Event, EventKind

__all__ = ["SQLEventStore", "check_table"]

_COLUMNS = (
    "seq",
    "entity_type",
    "entity_id",
    "version",
    "kind",
    "payload",
    "valid_from_us",
    "recorded_at_us",
    "actor",
    "corrects",
)
_NAMES = ", ".join(_COLUMNS)
_TABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,50}\Z")
_MICROSECOND = timedelta(microseconds=1)


def check_table(table: str) -> str:
    """``table`` if it is a plain SQL identifier, else ValueError."""
    if not _TABLE.match(table):
        raise ValueError(
            f"table must be a plain identifier (letters, digits, '_'; at most 51), got {table!r}"
        )
    return table


def _micros(moment: datetime) -> int:
    return (moment - EPOCH) // _MICROSECOND


def _moment(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


def _row(event: Event) -> tuple[object, ...]:
    return (
        event.seq,
        event.entity_type,
        event.entity_id,
        event.version,
        event.kind.value,
        json.dumps(event.payload, separators=(",", ":"), ensure_ascii=False),
        _micros(event.valid_from),
        _micros(event.recorded_at),
        event.actor,
        event.corrects,
    )


def _event(row: Sequence[Any]) -> Event:
    seq, entity_type, entity_id, version, kind, payload, valid, recorded, actor, corrects = row
    return Event.model_construct(
        seq=int(seq),
        entity_type=entity_type,
        entity_id=entity_id,
        version=int(version),
        kind=EventKind(kind),
        payload=json.loads(payload),
        valid_from=_moment(valid).astimezone(UTC),
        recorded_at=_moment(recorded).astimezone(UTC),
        actor=actor,
        corrects=None if corrects is None else int(corrects),
    )


class SQLEventStore(StoreEngine):
    """An ``EventStore`` in one SQL table (see the module docs). A subclass gives the
    dialect, a ``connect`` coroutine and ``write_lock``: statements run first in each
    append's transaction so appends take turns until they commit."""

    def __init__(
        self,
        *,
        dialect: Dialect,
        key_type: str,
        write_lock: Sequence[str],
        connect: Callable[[], Awaitable[Session]],
        identity: str,
        table: str,
        clock: Clock | None,
    ) -> None:
        super().__init__(identity=identity, clock=clock)
        self.table = check_table(table)
        self._dialect = dialect
        self._key_type = key_type
        self._write_lock = tuple(write_lock)
        self._connect = connect
        self._session: Session | None = None
        sql = dialect.sql
        t = self.table
        self._sql_load = sql(
            f"SELECT {_NAMES} FROM {t} WHERE entity_type = ? AND entity_id = ? ORDER BY version"
        )
        self._sql_last = f"SELECT seq, recorded_at_us FROM {t} ORDER BY seq DESC LIMIT 1"
        self._sql_insert = sql(
            f"INSERT INTO {t} ({_NAMES}) VALUES ({', '.join('?' * len(_COLUMNS))})"
        )
        self._sql_since = sql(f"SELECT {_NAMES} FROM {t} WHERE seq > ? ORDER BY seq LIMIT ?")

    @property
    def session(self) -> Session:
        session = self._session
        if session is None:  # the engine opens the store before any storage call
            raise RuntimeError(f"{self!r} is not open")
        return session

    async def _open(self) -> None:
        try:
            session = await self._connect()
        except MissingExtraError:
            raise
        except Exception as exc:
            raise BackendError(f"cannot open the event store {self.identity}: {exc}") from exc
        async with closing_on_error(session.aclose):
            await migrate_schema(
                session,
                self._dialect,
                version_table=f"{self.table}_schema",
                migrations=(self._schema_v1(),),
                too_new=self._too_new,
            )
        self._session = session

    def _schema_v1(self) -> tuple[str, ...]:
        t = self.table
        return (
            f"CREATE TABLE {t} (seq {self._key_type} PRIMARY KEY, "
            "entity_type TEXT NOT NULL, entity_id TEXT NOT NULL, version INTEGER NOT NULL, "
            "kind TEXT NOT NULL, payload TEXT NOT NULL, valid_from_us BIGINT NOT NULL, "
            "recorded_at_us BIGINT NOT NULL, actor TEXT NOT NULL, corrects INTEGER, "
            f"CONSTRAINT {t}_entity_version UNIQUE (entity_type, entity_id, version))",
        )

    def _too_new(self, found: int) -> SchemaVersionError:
        return SchemaVersionError(
            f"the event store {self.identity} has schema version {found}, newer than this "
            "pirn_like understands (1); upgrade pirn_like"
        )

    async def _close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.aclose()

    @contextmanager
    def _translated(self) -> Generator[None]:
        """The driver's errors as ``BackendError`` naming the store (URL redacted)."""
        try:
            yield
        except self.session.errors as exc:
            raise BackendError(f"event store {self.identity}: {exc}") from exc

    async def _load(self, entity_type: str, entity_id: str) -> Sequence[Event]:
        with self._translated():
            rows = await self.session.fetch(self._sql_load, (entity_type, entity_id))
        return [_event(r) for r in rows]

    async def _write(self, entity_type: str, entity_id: str, writer: Writer) -> Event:
        with self._translated():
            async with self.session.transaction() as tx:
                for statement in self._write_lock:
                    await tx.execute(statement)
                last = await tx.fetch(self._sql_last)
                rows = await tx.fetch(self._sql_load, (entity_type, entity_id))
                last_seq, last_recorded = (
                    (int(last[0][0]), _moment(last[0][1])) if last else (0, EPOCH)
                )
                event = writer([_event(r) for r in rows], last_seq, last_recorded)
                await tx.execute(self._sql_insert, _row(event))
        return event

    async def _since(
        self, after_seq: int, limit: int, types: Sequence[str] | None
    ) -> Sequence[Event]:
        sql, params = self._sql_since, (after_seq, limit)
        if types is not None:
            marks = ", ".join("?" * len(types))
            sql = self._dialect.sql(
                f"SELECT {_NAMES} FROM {self.table} WHERE seq > ? AND entity_type IN ({marks}) "
                "ORDER BY seq LIMIT ?"
            )
            params = (after_seq, *types, limit)
        with self._translated():
            rows = await self.session.fetch(sql, params)
        return [_event(r) for r in rows]
