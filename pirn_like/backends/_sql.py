"""What the SQL histories share: the schema and its migrations per dialect, the
statements, record <-> row conversion, and the RunHistory methods, written once over
a small driver seam (``Session``).

Tables (every name starts with ``pirn_like_``):

- ``pirn_like_schema``: one row, the schema version.
- ``pirn_like_runs``: one row per run; the ``RunRecord`` as JSON in ``record``.
- ``pirn_like_lineage``: one row per lineage record; ``seq`` is the order recorded.
- ``pirn_like_lineage_inputs``: one row per distinct input hash of a lineage record,
  so "which executions consumed this value" is an index lookup.
- ``pirn_like_lineage_journal``: batches of lineage just recorded, one JSON row per
  batch. Recording is on a run's path, so a batch is written as one row; it is moved
  into the two tables above (indexed) before the next lineage query, when the writer
  closes, or once a writer has left many rows there (``_JOURNAL_LIMIT``), whichever
  comes first, by whichever process gets there. The in-memory history defers its
  indexing the same way.

Times are stored as integer microseconds since the Unix epoch (UTC): exact, sortable
and the same in every dialect.
"""

from __future__ import annotations

import functools
import importlib.util
import itertools
import json
import re
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Protocol, Self
from urllib.parse import urlsplit

import anyio

from pirn_like._errors import (
    BackendError,
    ClosedResourceError,
    MissingExtraError,
    SchemaVersionError,
)
from pirn_like._version import __version__
from pirn_like.backends._closing import closing_on_error
from pirn_like.backends._queries import LineageQueries
from pirn_like.backends._url import BackendURL, redact
from pirn_like.core._records import KnotLineage, RunRecord, RunStatus
from pirn_like.core._results import Outcome, SkipReason

__all__ = [
    "DUCKDB",
    "POSTGRES",
    "SQLITE",
    "Dialect",
    "SQLHistory",
    "SerialConnection",
    "SerialSession",
    "Session",
    "Statements",
    "database_path",
    "migrate_schema",
    "parse_url",
]

_LINEAGE_COLUMNS = (
    ("run_id", "TEXT NOT NULL"),
    ("knot_id", "TEXT NOT NULL"),
    ("knot_class", "TEXT NOT NULL"),
    ("knot_config_hash", "TEXT NOT NULL"),
    ("parent_input_hashes", "TEXT NOT NULL"),
    ("parent_knot_ids", "TEXT NOT NULL"),
    ("output_hash", "TEXT"),
    ("outcome", "TEXT NOT NULL"),
    ("skip_reason", "TEXT"),
    ("skip_detail", "TEXT"),
    ("error_record_id", "TEXT"),
    ("dispatcher", "TEXT NOT NULL"),
    ("started_at_us", "BIGINT NOT NULL"),
    ("finished_at_us", "BIGINT NOT NULL"),
    ("attempts", "INTEGER NOT NULL"),
    ("pirn_like_version", "TEXT NOT NULL"),
    ("cache_key", "TEXT"),
    ("cached_from", "TEXT"),
    ("cache_key_parts", "TEXT"),
)
"""In ``KnotLineage`` field order, so a row converts by position."""

_LINEAGE_NAMES = ", ".join(name for name, _ in _LINEAGE_COLUMNS)
_DELETE_CHUNK = 500
"""Run ids per ``IN (...)``: well under every driver's limit on bound parameters."""
_CLAIM_ATTEMPTS = 5
"""Tries of a claim that conflicted with a concurrent one before the error is raised."""
_JOURNAL_LIMIT = 50_000
"""Lineage rows one writer leaves in the journal before it moves them itself."""


def _schema_v1(
    *,
    run_key: str,
    seq_type: str,
    sequences: tuple[str, ...] = (),
    indexes: bool = True,
    without_rowid: bool = False,
) -> tuple[str, ...]:
    """The first schema. ``indexes=False`` (DuckDB) keeps only the tables: its scans
    are fast and its indexes slow every insert down."""
    lineage_columns = ", ".join(f"{name} {decl}" for name, decl in _LINEAGE_COLUMNS)
    inputs = f"input_hash TEXT NOT NULL, seq {seq_type} NOT NULL"
    lineage_indexes = (
        "CREATE INDEX pirn_like_lineage_by_run ON pirn_like_lineage (run_id)",
        "CREATE INDEX pirn_like_lineage_by_knot ON pirn_like_lineage (knot_id)",
        "CREATE INDEX pirn_like_lineage_by_output ON pirn_like_lineage (output_hash)",
        # Only memoized knots have a cache key: the other rows stay out of its index.
        "CREATE INDEX pirn_like_lineage_by_cache_key ON pirn_like_lineage (cache_key) "
        "WHERE cache_key IS NOT NULL",
    )
    return (
        *sequences,
        f"CREATE TABLE pirn_like_runs ({run_key}, run_id TEXT NOT NULL UNIQUE, "
        "status TEXT NOT NULL, started_at_us BIGINT NOT NULL, record TEXT NOT NULL)",
        "CREATE INDEX pirn_like_runs_by_start ON pirn_like_runs (started_at_us)",
        f"CREATE TABLE pirn_like_lineage (seq {seq_type} PRIMARY KEY, {lineage_columns})",
        *(lineage_indexes if indexes else ()),
        # One row per (input hash, execution): the table is its own index where it can be.
        f"CREATE TABLE pirn_like_lineage_inputs ({inputs}"
        + (", PRIMARY KEY (input_hash, seq))" if indexes else ")")
        + (" WITHOUT ROWID" if without_rowid else ""),
    )


def _schema_v2(batch_key: str, *before: str) -> tuple[str, ...]:
    """The lineage journal (see the module docs)."""
    return (*before, f"CREATE TABLE pirn_like_lineage_journal ({batch_key}, records TEXT NOT NULL)")


@functools.cache
def _numbered(sql: str) -> str:
    counter = itertools.count(1)
    return re.sub(r"\?", lambda _: f"${next(counter)}", sql)


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one database differs: schema details, placeholders, bulk inserts."""

    migrations: tuple[tuple[str, ...], ...]
    """At index ``i``: the statements that take the schema from version ``i`` to ``i + 1``."""
    reserve_seqs: str
    """Returns ``?`` new, unused lineage sequence numbers, one a row."""
    schema_lock: tuple[str, ...] = ()
    """Run first in the migration transaction, so concurrent openers take turns."""
    journal_lock: tuple[str, ...] = ()
    """Run first when moving the journal into the lineage tables, so two writers do not
    move the same batches (SQLite's ``BEGIN IMMEDIATE`` already serializes them)."""
    numbered_params: bool = False
    """``$1, $2`` instead of ``?``."""
    unnest_insert: bool = False
    """Insert a batch as one statement over column lists (``unnest(?)`` per column):
    for DuckDB, whose executemany runs row by row (~60x slower)."""

    @property
    def version(self) -> int:
        """The newest schema version this code knows."""
        return len(self.migrations)

    def sql(self, text: str) -> str:
        """``text`` (written with ``?`` placeholders) in this dialect's style."""
        return _numbered(text) if self.numbered_params else text

    def insert(self, table: str, columns: Sequence[str]) -> str:
        """The statement ``Statements.insert_rows`` inserts rows into ``table`` with."""
        names = ", ".join(columns)
        if self.unnest_insert:
            values = ", ".join("unnest(?)" for _ in columns)
            return self.sql(f"INSERT INTO {table} ({names}) SELECT {values}")
        return self.sql(f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})")


SQLITE = Dialect(
    migrations=(
        _schema_v1(run_key="seq INTEGER PRIMARY KEY", seq_type="INTEGER", without_rowid=True),
        _schema_v2("batch INTEGER PRIMARY KEY"),
    ),
    # The write lock is held (BEGIN IMMEDIATE), so numbers after the largest are free.
    reserve_seqs="WITH RECURSIVE s(seq) AS (SELECT COALESCE(MAX(seq), 0) + 1 "
    "FROM pirn_like_lineage UNION ALL SELECT seq + 1 FROM s LIMIT ?) SELECT seq FROM s",
)
POSTGRES = Dialect(
    migrations=(
        _schema_v1(
            run_key="seq BIGSERIAL PRIMARY KEY",
            seq_type="BIGINT",
            sequences=("CREATE SEQUENCE pirn_like_lineage_seq",),
        ),
        _schema_v2("batch BIGSERIAL PRIMARY KEY"),
    ),
    reserve_seqs="SELECT nextval('pirn_like_lineage_seq') "
    "FROM generate_series(1, CAST(? AS INTEGER))",
    # int.from_bytes(b"pirnlike"): one advisory lock id for every pirn_like database.
    schema_lock=("SELECT pg_advisory_xact_lock(8100050513587333989)",),
    journal_lock=("SELECT pg_advisory_xact_lock(8100050513587333990)",),
    numbered_params=True,
)
DUCKDB = Dialect(
    migrations=(
        _schema_v1(
            run_key="seq BIGINT PRIMARY KEY DEFAULT nextval('pirn_like_runs_seq')",
            seq_type="BIGINT",
            sequences=(
                "CREATE SEQUENCE pirn_like_runs_seq",
                "CREATE SEQUENCE pirn_like_lineage_seq",
            ),
            indexes=False,
        ),
        _schema_v2(
            "batch BIGINT PRIMARY KEY DEFAULT nextval('pirn_like_journal_seq')",
            "CREATE SEQUENCE pirn_like_journal_seq",
        ),
    ),
    reserve_seqs="SELECT nextval('pirn_like_lineage_seq') FROM range(?)",
    unnest_insert=True,
)


# -- records <-> rows -------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _micros(moment: datetime) -> int:
    if moment.tzinfo is None:  # naive times are taken as UTC, as the engine writes them
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MICROSECOND


def _moment(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def _dump(mapping: Mapping[str, str]) -> str:
    """``mapping`` as compact JSON. The mappings of a batch repeat (every item of a
    fan-out has the same parents), so their texts are cached by content."""
    key = tuple(mapping.items())
    text = _dumped.get(key)
    if text is None:
        if len(_dumped) >= _DUMPED_MAX:
            _dumped.clear()
        text = _dumped[key] = json.dumps(dict(key), separators=(",", ":"))
    return text


_dumped: dict[tuple[tuple[str, str], ...], str] = {}
_DUMPED_MAX = 4096


def _run_row(run: RunRecord) -> tuple[object, ...]:
    return (run.run_id, str(run.status), _micros(run.started_at), run.model_dump_json())


def _journal_batch(records: Sequence[KnotLineage]) -> str:
    """``records`` as one JSON text, each record its fields in order.

    Written on the run's path, so built by orjson in one call (about 1 us a record,
    4x the standard library): times as RFC 3339 text, mappings as objects.
    ``_journaled_row`` turns a record into a row of the lineage table later."""
    import orjson

    return orjson.dumps([tuple(rec) for rec in records], default=dict).decode()


def _journaled_row(fields: list[Any]) -> tuple[object, ...]:
    """A record from ``_journal_batch`` as a row of ``pirn_like_lineage``."""
    key_parts = fields[18]
    return (
        *fields[:4],
        _dump(fields[4]),
        _dump(fields[5]),
        *fields[6:12],
        _micros(datetime.fromisoformat(fields[12])),
        _micros(datetime.fromisoformat(fields[13])),
        *fields[14:18],
        None if key_parts is None else _dump(key_parts),
    )


@functools.lru_cache(maxsize=4096)
def _input_hashes(parent_input_hashes: str) -> frozenset[str]:
    """The distinct input hashes of a row's ``parent_input_hashes`` JSON; rows of one
    batch often share it (every item of a fan-out has the same parents)."""
    return frozenset(json.loads(parent_input_hashes).values())


def _lineage_from_row(row: Sequence[Any]) -> KnotLineage:
    (
        run_id,
        knot_id,
        knot_class,
        config_hash,
        input_hashes,
        parent_ids,
        output_hash,
        outcome,
        skip_reason,
        skip_detail,
        error_id,
        dispatcher,
        started,
        finished,
        attempts,
        version,
        cache_key,
        cached_from,
        key_parts,
    ) = row
    return KnotLineage(
        run_id,
        knot_id,
        knot_class,
        config_hash,
        json.loads(input_hashes),
        json.loads(parent_ids),
        output_hash,
        Outcome(outcome),
        None if skip_reason is None else SkipReason(skip_reason),
        skip_detail,
        error_id,
        dispatcher,
        _moment(started),
        _moment(finished),
        attempts,
        version,
        cache_key,
        cached_from,
        None if key_parts is None else json.loads(key_parts),
    )


# -- the driver seam --------------------------------------------------------------


class Statements(Protocol):
    """Runs statements already written in the dialect's placeholder style."""

    async def fetch(self, sql: str, params: Sequence[object] = ()) -> Sequence[Sequence[Any]]: ...
    async def execute(self, sql: str, params: Sequence[object] = ()) -> None: ...
    async def insert_rows(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        """Insert ``rows`` with ``sql`` from ``Dialect.insert`` (whose shape the driver
        binds: one parameter set per row, or one list per column for ``unnest``)."""
        ...


class Session(Protocol):
    """An open database as the shared history code uses it."""

    @property
    def errors(self) -> tuple[type[Exception], ...]:
        """The driver's exception types, translated to ``BackendError`` at the seam."""
        ...

    async def fetch(self, sql: str, params: Sequence[object] = ()) -> Sequence[Sequence[Any]]: ...
    def transaction(self) -> AbstractAsyncContextManager[Statements]:
        """Statements inside one write transaction: committed when the block ends,
        rolled back if it raises (or is cancelled)."""
        ...

    async def aclose(self) -> None: ...


class SerialConnection(Statements, Protocol):
    """One driver connection, used by one task at a time."""

    async def close(self) -> None: ...


class SerialSession:
    """A ``Session`` over one connection: a lock gives each transaction (and each
    read) the connection to itself."""

    def __init__(
        self, conn: SerialConnection, *, begin: str, errors: tuple[type[Exception], ...]
    ) -> None:
        self._conn = conn
        self._begin = begin
        self._lock = anyio.Lock()
        self.errors = errors

    async def fetch(self, sql: str, params: Sequence[object] = ()) -> Sequence[Sequence[Any]]:
        async with self._lock:
            return await self._conn.fetch(sql, params)

    @asynccontextmanager
    async def transaction(self) -> AsyncGenerator[Statements, None]:
        async with self._lock:
            try:
                # Inside the try: cancelled while the driver's thread runs BEGIN, the
                # transaction would otherwise stay open (holding SQLite's write lock).
                await self._conn.execute(self._begin)
                yield self._conn
                await self._conn.execute("COMMIT")
            except BaseException:
                with anyio.CancelScope(shield=True):
                    # The driver may have ended the transaction already (a failed COMMIT):
                    # the original error is the one to report.
                    with suppress(*self.errors):
                        await self._conn.execute("ROLLBACK")
                raise

    async def aclose(self) -> None:
        async with self._lock:
            await self._conn.close()


def parse_url(url: str, schemes: Sequence[str], owner: str) -> BackendURL:
    """``url`` taken apart, or ValueError if it is not one of ``schemes``."""
    parsed = BackendURL.parse(url)
    if parsed.scheme not in schemes:
        expected = " or ".join(f"{s}://" for s in schemes)
        raise ValueError(f"{owner}.from_url takes a {expected} URL, got {redact(url)!r}")
    return parsed


def database_path(url: str, scheme: str, owner: str, *, example: str) -> str:
    """The file a ``scheme:///relative/path``, ``scheme:////absolute/path`` or
    ``scheme:///:memory:`` URL names; ValueError for another URL or one naming no file
    (the message suggests ``scheme:///example``)."""
    parsed = parse_url(url, (scheme,), owner)
    if not parsed.path:
        raise ValueError(f"{url!r} names no database file; e.g. {scheme}:///{example}")
    return parsed.path


async def migrate_schema(
    session: Session,
    dialect: Dialect,
    *,
    version_table: str,
    migrations: Sequence[Sequence[str]],
    too_new: Callable[[int], SchemaVersionError],
) -> None:
    """Create or upgrade a schema in one transaction.

    ``version_table`` holds the schema version in one row; ``migrations[i]`` takes the
    schema from version ``i`` to ``i + 1``. A database at a version above
    ``len(migrations)`` was set up by a newer pirn_like: ``too_new(found)`` is raised.
    """
    latest = len(migrations)
    async with session.transaction() as tx:
        for statement in dialect.schema_lock:
            await tx.execute(statement)
        await tx.execute(f"CREATE TABLE IF NOT EXISTS {version_table} (version INTEGER NOT NULL)")
        rows = await tx.fetch(f"SELECT version FROM {version_table}")
        found = int(rows[0][0]) if rows else 0
        if found > latest:
            raise too_new(found)
        for migration in migrations[found:]:
            for statement in migration:
                await tx.execute(statement)
        if not rows:
            insert = f"INSERT INTO {version_table} (version) VALUES (?)"
            await tx.execute(dialect.sql(insert), (latest,))
        elif found < latest:
            update = f"UPDATE {version_table} SET version = ?"
            await tx.execute(dialect.sql(update), (latest,))


class SQLHistory(LineageQueries):
    """The RunHistory methods for every SQL database (see the module docs).

    A subclass supplies a dialect, its URL and a ``connect`` coroutine returning an
    open ``Session``. Entering opens the database and brings its schema up to date;
    entering again while open (a tapestry given an open history) shares it, and the
    database is closed when the outermost ``async with`` ends.
    """

    durable: ClassVar[bool] = True
    """Records outlive the process, so runs checkpoint (see ``RunHistory``)."""
    extra: ClassVar[str]
    """The pirn-like extra that installs this history's drivers."""

    def __init__(
        self, *, dialect: Dialect, url: str, connect: Callable[[], Awaitable[Session]]
    ) -> None:
        self._dialect = dialect
        self._url = url
        self._shown_url = redact(url)
        self._connect = connect
        self._session: Session | None = None
        self._opens = 0
        self._closed = False
        self._lifecycle = anyio.Lock()
        self._journaled = 0  # rows this handle left in the journal

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._shown_url!r})"

    async def __aenter__(self) -> Self:
        async with self._lifecycle:
            if self._closed:
                raise ClosedResourceError(f"{self!r} was closed; create a new one to reopen it")
            if self._session is None:
                if importlib.util.find_spec("orjson") is None:  # writes journal batches
                    raise MissingExtraError(type(self).__name__, self.extra, "orjson")
                session = await self._connect_checked()
                async with closing_on_error(session.aclose):
                    await self._migrate(session)
                self._session = session
            self._opens += 1
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        async with self._lifecycle:
            if self._session is None:
                return
            self._opens -= 1
            if self._opens == 0:
                with anyio.CancelScope(shield=True):
                    try:
                        if self._journaled:  # leave the tables complete for other readers
                            await self._move_journal()
                    finally:
                        session, self._session = self._session, None
                        self._closed = True
                        await session.aclose()

    async def _connect_checked(self) -> Session:
        try:
            return await self._connect()
        except ImportError:  # MissingExtraError: already says what to install
            raise
        except Exception as exc:
            password = urlsplit(self._url).password
            message = f"{type(exc).__name__}: {exc}"
            leaks = bool(password) and password in message
            if password:
                message = message.replace(password, "***")
            error = BackendError(f"cannot open {self._shown_url}: {message}")
            # A driver message quoting the password must not travel along as the cause.
            raise error from (None if leaks else exc)

    async def _migrate(self, session: Session) -> None:
        try:
            await migrate_schema(
                session,
                self._dialect,
                version_table="pirn_like_schema",
                migrations=self._dialect.migrations,
                too_new=self._newer_schema,
            )
        except session.errors as exc:
            raise BackendError(
                f"cannot set up the pirn_like schema in {self._shown_url}: {exc}"
            ) from exc

    def _newer_schema(self, found: int) -> SchemaVersionError:
        return SchemaVersionError(
            f"the database {self._shown_url} has pirn_like schema version {found}, but "
            f"pirn_like {__version__} supports up to version {self._dialect.version}; "
            "upgrade pirn_like to open it"
        )

    @asynccontextmanager
    async def _using(self, action: str) -> AsyncGenerator[Session, None]:
        session = self._session
        if session is None:
            state = "was closed" if self._closed else "is not open"
            raise ClosedResourceError(
                f"{self!r} {state}: use it inside `async with` (a Tapestry opens the "
                "history it is given on its first run)"
            )
        try:
            yield session
        except session.errors as exc:
            raise BackendError(f"{action} failed on {self._shown_url}: {exc}") from exc

    # -- runs ---------------------------------------------------------------------

    async def record_run_started(self, run: RunRecord) -> None:
        """Record ``run``, replacing any run recorded under its id."""
        await self._put_run(run)

    async def record_run_finished(self, run: RunRecord) -> None:
        """Record ``run`` in its final state, replacing the started record."""
        await self._put_run(run)

    async def claim_run(self, run: RunRecord) -> bool:
        """Record ``run`` unless a run with its id is recorded; True if this call did."""
        sql = self._dialect.sql(
            "INSERT INTO pirn_like_runs (run_id, status, started_at_us, record) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (run_id) DO NOTHING RETURNING run_id"
        )
        row = _run_row(run)
        for attempt in itertools.count(1):
            try:
                async with self._using("claiming a run") as session, session.transaction() as tx:
                    return bool(await tx.fetch(sql, row))
            except BackendError:
                # DuckDB reports a claim concurrent with another, not yet committed, as a
                # conflict instead of doing nothing: once that one commits, ours loses.
                if await self.get_run(run.run_id) is not None:
                    return False
                if attempt == _CLAIM_ATTEMPTS:
                    raise
                await anyio.sleep(0.005 * attempt)
        raise AssertionError("unreachable")

    async def _put_run(self, run: RunRecord) -> None:
        sql = self._dialect.sql(
            "INSERT INTO pirn_like_runs (run_id, status, started_at_us, record) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (run_id) DO UPDATE SET status = excluded.status, "
            "started_at_us = excluded.started_at_us, record = excluded.record"
        )
        row = _run_row(run)
        async with self._using("recording a run") as session, session.transaction() as tx:
            await tx.execute(sql, row)

    async def get_run(self, run_id: str) -> RunRecord | None:
        """The run recorded under ``run_id``, or None."""
        sql = self._dialect.sql("SELECT record FROM pirn_like_runs WHERE run_id = ?")
        async with self._using("reading a run") as session:
            rows = await session.fetch(sql, (run_id,))
        return RunRecord.model_validate_json(rows[0][0]) if rows else None

    async def list_runs(
        self,
        *,
        limit: int = 100,
        status: RunStatus | None = None,
        started_before: datetime | None = None,
    ) -> list[RunRecord]:
        """Runs, newest first (by start time), at most ``limit``."""
        if limit < 0:
            raise ValueError(f"limit must be at least 0, got {limit}")
        conditions: list[str] = []
        params: list[object] = []
        if status is not None:
            conditions.append("status = ?")
            params.append(str(status))
        if started_before is not None:
            conditions.append("started_at_us < ?")
            params.append(_micros(started_before))
        where = f"WHERE {' AND '.join(conditions)} " if conditions else ""
        sql = self._dialect.sql(
            f"SELECT record FROM pirn_like_runs {where}ORDER BY started_at_us DESC, seq DESC "
            "LIMIT ?"
        )
        async with self._using("listing runs") as session:
            rows = await session.fetch(sql, (*params, limit))
        return [RunRecord.model_validate_json(row[0]) for row in rows]

    async def delete_runs(self, run_ids: Sequence[str]) -> int:
        """Delete these runs and all their lineage in one transaction; returns how many
        runs were deleted (unknown ids are ignored)."""
        if isinstance(run_ids, str):
            raise TypeError(f"delete_runs takes a sequence of run ids, got the str {run_ids!r}")
        ids = list(dict.fromkeys(run_ids))
        deleted = 0
        await self._move_journal()  # or journaled rows of these runs would come back
        async with self._using("deleting runs") as session, session.transaction() as tx:
            for start in range(0, len(ids), _DELETE_CHUNK):
                chunk = ids[start : start + _DELETE_CHUNK]
                marks = ", ".join("?" * len(chunk))
                doomed = await tx.fetch(
                    self._dialect.sql(
                        "SELECT parent_input_hashes FROM pirn_like_lineage "
                        f"WHERE run_id IN ({marks})"
                    ),
                    chunk,
                )
                hashes = sorted({h for (text,) in doomed for h in json.loads(text).values()})
                # By input hash first: the inputs table is keyed (input_hash, seq).
                for first in range(0, len(hashes), _DELETE_CHUNK):
                    some = hashes[first : first + _DELETE_CHUNK]
                    await tx.execute(
                        self._dialect.sql(
                            "DELETE FROM pirn_like_lineage_inputs WHERE input_hash IN "
                            f"({', '.join('?' * len(some))}) AND seq IN "
                            f"(SELECT seq FROM pirn_like_lineage WHERE run_id IN ({marks}))"
                        ),
                        [*some, *chunk],
                    )
                await tx.execute(
                    self._dialect.sql(f"DELETE FROM pirn_like_lineage WHERE run_id IN ({marks})"),
                    chunk,
                )
                gone = await tx.fetch(
                    self._dialect.sql(
                        f"DELETE FROM pirn_like_runs WHERE run_id IN ({marks}) RETURNING run_id"
                    ),
                    chunk,
                )
                deleted += len(gone)
        return deleted

    # -- lineage ------------------------------------------------------------------

    async def record_lineage(self, records: Sequence[KnotLineage]) -> None:
        """Record a batch of lineage: one journal row, atomic on its own."""
        sql = self._dialect.sql(
            "INSERT INTO pirn_like_lineage_journal (records) VALUES (?) RETURNING batch"
        )
        async with self._using("recording lineage") as session:
            if not records:
                return
            await session.fetch(sql, (_journal_batch(records),))
        self._journaled += len(records)
        if self._journaled >= _JOURNAL_LIMIT:
            await self._move_journal()

    async def _move_journal(self) -> None:
        """Move every journaled batch into the lineage tables, in the order recorded."""
        dialect = self._dialect
        async with self._using("indexing lineage") as session:
            pending = await session.fetch("SELECT 1 FROM pirn_like_lineage_journal LIMIT 1")
            if not pending:
                self._journaled = 0
                return
            async with session.transaction() as tx:
                for statement in dialect.journal_lock:
                    await tx.execute(statement)
                batches = await tx.fetch(
                    "SELECT batch, records FROM pirn_like_lineage_journal ORDER BY batch"
                )
                if not batches:  # another writer moved them meanwhile
                    return
                rows = [_journaled_row(row) for _, text in batches for row in json.loads(text)]
                reserved = await tx.fetch(dialect.sql(dialect.reserve_seqs), (len(rows),))
                seqs = sorted(int(row[0]) for row in reserved)
                inputs = [
                    (input_hash, seq)
                    for seq, row in zip(seqs, rows, strict=True)
                    for input_hash in _input_hashes(row[4])
                ]
                await self._insert(
                    tx,
                    "pirn_like_lineage",
                    ("seq", *(name for name, _ in _LINEAGE_COLUMNS)),
                    [(seq, *row) for seq, row in zip(seqs, rows, strict=True)],
                )
                await self._insert(tx, "pirn_like_lineage_inputs", ("input_hash", "seq"), inputs)
                await tx.execute(
                    dialect.sql("DELETE FROM pirn_like_lineage_journal WHERE batch <= ?"),
                    (max(int(batch) for batch, _ in batches),),
                )
        self._journaled = 0

    async def _insert(
        self,
        tx: Statements,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[object]],
    ) -> None:
        if rows:
            await tx.insert_rows(self._dialect.insert(table, columns), rows)

    async def _lineage_where(self, condition: str, value: str) -> list[KnotLineage]:
        sql = self._dialect.sql(
            f"SELECT {_LINEAGE_NAMES} FROM pirn_like_lineage WHERE {condition} ORDER BY seq"
        )
        await self._move_journal()
        async with self._using("reading lineage") as session:
            rows = await session.fetch(sql, (value,))
        return [_lineage_from_row(row) for row in rows]

    async def get_lineage(self, run_id: str) -> list[KnotLineage]:
        """The lineage of ``run_id``, in the order recorded."""
        return await self._lineage_where("run_id = ?", run_id)

    async def query_lineage_by_output_hash(self, output_hash: str) -> list[KnotLineage]:
        """Executions that produced the value ``output_hash``."""
        return await self._lineage_where("output_hash = ?", output_hash)

    async def query_lineage_by_input_hash(self, input_hash: str) -> list[KnotLineage]:
        """Executions that consumed the value ``input_hash`` (as any input)."""
        return await self._lineage_where(
            "seq IN (SELECT seq FROM pirn_like_lineage_inputs WHERE input_hash = ?)", input_hash
        )

    async def query_lineage_by_knot_id(self, knot_id: str) -> list[KnotLineage]:
        """Executions of the knot ``knot_id``, across runs."""
        return await self._lineage_where("knot_id = ?", knot_id)

    async def query_lineage_by_cache_key(self, cache_key: str) -> list[KnotLineage]:
        """Executions whose ``cache_key`` is ``cache_key`` (any outcome)."""
        return await self._lineage_where("cache_key = ?", cache_key)
