"""``SqlLoad``: rows into a SQL table (append, merge or scd2), one transaction per load."""

from __future__ import annotations

import operator
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from pirn_like.capabilities.sql._append import append
from pirn_like.capabilities.sql._batch import Batch, Kind, batch_from, rows_hash
from pirn_like.capabilities.sql._errors import SqlLoadError
from pirn_like.capabilities.sql._merge import merge
from pirn_like.capabilities.sql._models import DriftPolicy, LoadMode, SqlLoadResult
from pirn_like.capabilities.sql._protocol import SqlTarget
from pirn_like.capabilities.sql._scd2 import SCD2_COLUMNS, scd2
from pirn_like.capabilities.sql._step import Counts, LoadStep
from pirn_like.capabilities.sql._table import prepare_table
from pirn_like.capabilities.sql._url import sql_target_from_url
from pirn_like.core._config import KnotConfig
from pirn_like.core._knot import Knot, Registrar

__all__ = ["SqlLoad"]

_TABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?\Z")
_MODES: dict[LoadMode, Callable[[LoadStep], Awaitable[Counts]]] = {
    LoadMode.APPEND: append,
    LoadMode.MERGE: merge,
    LoadMode.SCD2: scd2,
}


class _DryRunDone(Exception):
    """Ends a dry run's transaction, so it rolls back."""

    def __init__(self, result: SqlLoadResult) -> None:
        super().__init__("dry run")
        self.result = result


class SqlLoad(Knot):
    """Load the rows of input ``rows`` (a list of dicts or pydantic models, or a
    pyarrow Table) into ``table`` on ``target`` (a ``SqlTarget`` or its URL).

    ``mode``: ``append``, ``merge`` (upsert on ``keys``) or ``scd2`` (versions per key,
    starting at the ``event_time`` column's value). ``compare`` limits the columns
    whose change counts (default: every column but the keys and the event time).
    ``drift``: what to do with rows whose columns differ from the table's (see
    ``DriftPolicy``). The table is created from the rows when absent. Everything
    happens in one transaction; ``dry_run=True`` rolls it back and reports what
    would have changed. Re-running a load with the same rows changes nothing.

    A target given as a URL is opened for each load and closed after it; a target
    object is opened on first use and closed by its owner. Capability knots run on
    the local and thread dispatchers (the target is not shipped to other processes).
    """

    def __init__(
        self,
        *,
        target: SqlTarget | str,
        table: str,
        mode: LoadMode | str = LoadMode.APPEND,
        keys: Sequence[str] = (),
        event_time: str | None = None,
        compare: Sequence[str] | None = None,
        drift: DriftPolicy | str = DriftPolicy.FAIL,
        dry_run: bool = False,
        preview_limit: int = 100,
        rows: Any,
        _config: KnotConfig | None = None,
        tapestry: Registrar | None = None,
    ) -> None:
        node = f"SqlLoad {getattr(_config, 'id', '?')!r}"
        if isinstance(target, str):
            self._url: str | None = target
            self.engine = sql_target_from_url(target)
        else:
            self._url = None
            self.engine = target
        if not _TABLE.match(table):
            raise SqlLoadError(
                f"{node}: table {table!r} is not a plain name: use letters, digits and '_' "
                "(optionally schema.table)"
            )
        self.table = table
        self.mode = _choice(node, "mode", LoadMode, mode)
        self.drift = _choice(node, "drift", DriftPolicy, drift)
        self.keys = _names(node, "keys", keys)
        self.event_time = event_time
        self.compare = None if compare is None else _names(node, "compare", compare)
        self.dry_run = dry_run
        self.preview_limit = preview_limit
        self._check_settings(node)
        super().__init__(_config=_config, tapestry=tapestry, rows=rows)

    def _check_settings(self, node: str) -> None:
        if self.mode in (LoadMode.MERGE, LoadMode.SCD2) and not self.keys:
            raise SqlLoadError(f"{node}: mode {self.mode.value!r} needs keys=[...]")
        if self.mode is LoadMode.SCD2:
            if self.event_time is None:
                raise SqlLoadError(
                    f"{node}: mode 'scd2' needs event_time='<column>': the column whose "
                    "value starts a version"
                )
            if self.event_time in self.keys:
                raise SqlLoadError(f"{node}: event_time {self.event_time!r} is one of the keys")
        elif self.event_time is not None:
            raise SqlLoadError(f"{node}: event_time is only used by mode 'scd2'")
        overlap = sorted(set(self.compare or ()) & set(self.keys))
        if overlap:
            raise SqlLoadError(f"{node}: compare lists key column(s) {overlap}")
        if self.preview_limit < 0:
            raise SqlLoadError(f"{node}: preview_limit must be at least 0")

    def identity_settings(self) -> dict[str, object]:
        return {
            **super().identity_settings(),
            "target": self.engine.identity,
            "table": self.table,
            "mode": self.mode.value,
            "keys": list(self.keys),
            "event_time": self.event_time,
            "compare": None if self.compare is None else list(self.compare),
            "drift": self.drift.value,
            "dry_run": self.dry_run,
            "preview_limit": self.preview_limit,
        }

    async def process(self, rows: Any, **_: Any) -> SqlLoadResult:
        batch = batch_from(rows, self.table)
        self._check_batch(batch)
        if not batch.rows:
            return self._result(Counts(), batch, rows_hash(batch))
        target = sql_target_from_url(self._url) if self._url is not None else self.engine
        try:
            return await self._load(target, batch)
        finally:
            if self._url is not None:
                await target.aclose()

    async def _load(self, target: SqlTarget, batch: Batch) -> SqlLoadResult:
        dialect = target.dialect
        extra: list[tuple[str, str]] = []
        primary_key = self.keys
        if self.mode is LoadMode.SCD2:
            assert self.event_time is not None
            moment = dialect.types[batch.kinds[self.event_time]]
            extra = [(SCD2_COLUMNS[0], moment), (SCD2_COLUMNS[1], moment)]
            extra.append((SCD2_COLUMNS[2], dialect.types[Kind.BOOL]))
            primary_key = (*self.keys, SCD2_COLUMNS[0])
        try:
            async with target.transaction() as tx:
                prepared = await prepare_table(
                    tx,
                    dialect,
                    self.table,
                    batch,
                    drift=self.drift,
                    extra=extra,
                    primary_key=primary_key,
                )
                loaded = prepared.batch
                digest = rows_hash(loaded)
                step = LoadStep(
                    tx=tx,
                    dialect=dialect,
                    table=self.table,
                    prepared=prepared,
                    keys=self.keys,
                    compare=self._compare(loaded),
                    event_time=self.event_time,
                    dry_run=self.dry_run,
                    preview_limit=self.preview_limit,
                    rows_hash=digest,
                )
                counts = await _MODES[self.mode](step)
                result = self._result(
                    counts,
                    loaded,
                    digest,
                    created=prepared.created,
                    added=prepared.added,
                    dropped=prepared.dropped,
                )
                if self.dry_run:
                    raise _DryRunDone(result)
        except _DryRunDone as done:
            return done.result
        return result

    def _compare(self, batch: Batch) -> tuple[str, ...]:
        if self.compare is not None:
            return self.compare
        fixed = {*self.keys, self.event_time}
        return tuple(c for c in batch.columns if c not in fixed)

    def _check_batch(self, batch: Batch) -> None:
        where = f"load into {self.table!r}"
        if not batch.rows:
            return
        columns = set(batch.columns)
        timed = [self.event_time] if self.event_time else []
        needed = [*self.keys, *timed, *(self.compare or ())]
        missing = [c for c in needed if c not in columns]
        if missing:
            raise SqlLoadError(f"{where}: the rows have no column(s) {missing}")
        if self.mode is LoadMode.SCD2:
            reserved = sorted(columns & set(SCD2_COLUMNS))
            if reserved:
                raise SqlLoadError(
                    f"{where}: column(s) {reserved} are kept by scd2 itself; rename them"
                )
        identity = [*self.keys, *timed]
        if not identity:
            return
        # Whole-column passes (itemgetter, set) rather than a Python loop per row.
        pick = operator.itemgetter(*(batch.columns.index(c) for c in identity))
        keys: list[Any] = list(map(pick, batch.rows))
        nulls = [k for k in keys if k is None] if len(identity) == 1 else []
        nulls += [] if len(identity) == 1 else [k for k in keys if None in k]
        if nulls:
            raise SqlLoadError(f"{where}: a row has a null in {identity}: {nulls[0]}")
        if self.mode is LoadMode.APPEND or len(set(keys)) == len(keys):
            return
        seen: set[Any] = set()
        twice = next(k for k in keys if k in seen or seen.add(k))
        shown = dict(zip(identity, twice if len(identity) > 1 else (twice,), strict=True))
        raise SqlLoadError(
            f"{where}: two rows have {shown}; {self.mode.value} needs one row per {identity}"
        )

    def _result(
        self,
        counts: Counts,
        batch: Batch,
        digest: str,
        *,
        created: bool = False,
        added: tuple[str, ...] = (),
        dropped: tuple[str, ...] = (),
    ) -> SqlLoadResult:
        return SqlLoadResult(
            target=self.engine.identity,
            table=self.table,
            mode=self.mode,
            rows=len(batch.rows),
            inserted=counts.inserted,
            updated=counts.updated,
            closed=counts.closed,
            unchanged=counts.unchanged,
            dry_run=self.dry_run,
            rows_hash=digest,
            added_columns=added,
            dropped_columns=dropped,
            created_table=created,
            preview=counts.preview,
        )


_E = TypeVar("_E", LoadMode, DriftPolicy)


def _choice(node: str, what: str, enum: type[_E], value: _E | str) -> _E:
    try:
        return enum(value)
    except ValueError:
        choices = [m.value for m in enum]
        raise SqlLoadError(f"{node}: {what} {value!r} is not one of {choices}") from None


def _names(node: str, what: str, names: Sequence[str]) -> tuple[str, ...]:
    if isinstance(names, str):
        return (names,)
    found = tuple(names)
    if not all(isinstance(n, str) and n for n in found):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise SqlLoadError(f"{node}: {what} must be column names, got {list(found)!r}")
    return found
