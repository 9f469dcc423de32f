"""SqlLoad: one conformance suite over SQLite, DuckDB and PostgreSQL (each mode,
idempotent re-runs, dry runs, drift policies, the scd2 timeline with a late row,
one transaction per load), plus input forms, settings errors and lineage."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pydantic import BaseModel

from pirn_like import (
    BackendError,
    ClosedResourceError,
    KnotConfig,
    Parameter,
    RunRequest,
    Tapestry,
    knot,
)
from pirn_like.backends import history_from_url
from pirn_like.capabilities.sql import (
    SchemaDriftError,
    SqlLoad,
    SqlLoadError,
    SqlLoadResult,
    SqlTarget,
    sql_target_from_url,
)

pytestmark = pytest.mark.anyio

CASES = [
    ("sqlite", "asyncio"),  # aiosqlite and asyncpg run on asyncio only
    ("duckdb", "asyncio"),
    ("duckdb", "trio"),
    ("postgres", "asyncio"),
]


def jan(d: int) -> datetime:
    return datetime(2026, 1, d, tzinfo=UTC)


@pytest.fixture(params=CASES, ids=[f"{k}-{b}" for k, b in CASES])
def case(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param


@pytest.fixture
def anyio_backend(case: tuple[str, str]) -> str:
    return case[1]


@pytest.fixture
def url(case: tuple[str, str], tmp_path: Path, request: pytest.FixtureRequest) -> str:
    kind = case[0]
    if kind == "postgres":
        return request.getfixturevalue("postgres_db_url")
    return f"{kind}:///{tmp_path / f'loads.{kind}'}"


@pytest.fixture
async def target(url: str) -> AsyncIterator[SqlTarget]:
    async with sql_target_from_url(url) as opened:
        yield opened


async def load(target: SqlTarget, rows: object, **settings: Any) -> SqlLoadResult:
    settings.setdefault("table", "items")
    loader = SqlLoad(target=target, rows=rows, _config=KnotConfig(id="load"), **settings)
    return await loader.process(rows=rows)


async def select(target: SqlTarget, sql: str) -> list[tuple[Any, ...]]:
    async with target.transaction() as tx:
        return [tuple(row) for row in await tx.fetch(sql)]


async def tables(target: SqlTarget) -> set[str]:
    columns = (
        "name FROM sqlite_master"
        if target.dialect.name == "sqlite"
        else ("table_name FROM information_schema.tables WHERE table_schema = current_schema()")
    )
    return {row[0] for row in await select(target, f"SELECT {columns}")}


SCD2: dict[str, Any] = {
    "table": "customers",
    "mode": "scd2",
    "keys": ["id"],
    "event_time": "seen_at",
}


def counts(result: SqlLoadResult) -> tuple[int, int, int, int]:
    return (result.inserted, result.updated, result.closed, result.unchanged)


ITEMS = [
    {"id": 1, "name": "ant", "price": 1.5},
    {"id": 2, "name": "bee", "price": 2.0},
    {"id": 3, "name": "cat", "price": 3.25},
]


# -- append ---------------------------------------------------------------------


async def test_append_creates_the_table_and_a_rerun_inserts_nothing(target: SqlTarget) -> None:
    first = await load(target, ITEMS)
    assert first.created_table
    assert first.rows == 3
    assert counts(first) == (3, 0, 0, 0)
    again = await load(target, ITEMS)
    assert counts(again) == (0, 0, 0, 3)
    assert again.rows_hash == first.rows_hash
    more = await load(target, [{"id": 4, "name": "dog", "price": 4.0}])
    assert counts(more) == (1, 0, 0, 0)
    got = await select(target, "SELECT id, name, price FROM items ORDER BY id")
    assert got == [(1, "ant", 1.5), (2, "bee", 2.0), (3, "cat", 3.25), (4, "dog", 4.0)]


# -- merge ----------------------------------------------------------------------


async def test_merge_inserts_new_keys_and_counts_only_changed_rows(target: SqlTarget) -> None:
    assert counts(await load(target, ITEMS, mode="merge", keys=["id"])) == (3, 0, 0, 0)
    batch = [
        {"id": 1, "name": "ant", "price": 1.5},  # equal
        {"id": 2, "name": "bee", "price": 2.5},  # changed
        {"id": 5, "name": "eel", "price": None},  # new
    ]
    result = await load(target, batch, mode="merge", keys=["id"])
    assert counts(result) == (1, 1, 0, 1)
    assert not result.created_table
    assert counts(await load(target, batch, mode="merge", keys=["id"])) == (0, 0, 0, 3)
    got = await select(target, "SELECT id, name, price FROM items ORDER BY id")
    assert got == [(1, "ant", 1.5), (2, "bee", 2.5), (3, "cat", 3.25), (5, "eel", None)]


async def test_merge_with_compare_ignores_other_columns_changes(target: SqlTarget) -> None:
    await load(target, ITEMS, mode="merge", keys=["id"])
    batch = [{"id": 1, "name": "ANT", "price": 1.5}, {"id": 2, "name": "bee", "price": 9.0}]
    result = await load(target, batch, mode="merge", keys=["id"], compare=["price"])
    assert counts(result) == (0, 1, 0, 1)
    got = await select(target, "SELECT id, name, price FROM items WHERE id < 3 ORDER BY id")
    assert got == [(1, "ant", 1.5), (2, "bee", 9.0)]


# -- scd2 -----------------------------------------------------------------------


async def timeline(target: SqlTarget) -> list[tuple[Any, ...]]:
    rows = await select(
        target,
        "SELECT id, tier, CAST(valid_from AS VARCHAR), CAST(valid_to AS VARCHAR), is_current "
        "FROM customers ORDER BY id, valid_from",
    )
    return [(i, tier, vf[:10], vt and vt[:10], bool(cur)) for i, tier, vf, vt, cur in rows]


async def test_scd2_keeps_versions_and_places_a_late_row(target: SqlTarget) -> None:
    first = [
        {"id": 1, "tier": "bronze", "seen_at": jan(1)},
        {"id": 2, "tier": "gold", "seen_at": jan(1)},
    ]
    assert counts(await load(target, first, **SCD2)) == (2, 0, 0, 0)
    # id 1 moves up on the 20th; id 2 is seen again unchanged: no new version.
    later = [
        {"id": 1, "tier": "gold", "seen_at": jan(20)},
        {"id": 2, "tier": "gold", "seen_at": jan(20)},
    ]
    assert counts(await load(target, later, **SCD2)) == (1, 0, 1, 1)
    # A row from the 10th arrives late: it goes between the two versions.
    late = [{"id": 1, "tier": "silver", "seen_at": jan(10)}]
    assert counts(await load(target, late, **SCD2)) == (1, 0, 1, 0)
    expected = [
        (1, "bronze", "2026-01-01", "2026-01-10", False),
        (1, "silver", "2026-01-10", "2026-01-20", False),
        (1, "gold", "2026-01-20", None, True),
        (2, "gold", "2026-01-01", None, True),
    ]
    assert await timeline(target) == expected
    # Everything again, in any order: nothing changes.
    again = await load(target, [*late, *later, *first], **SCD2)
    assert counts(again) == (0, 0, 0, 5)
    assert await timeline(target) == expected


async def test_scd2_row_older_than_every_version(target: SqlTarget) -> None:
    await load(target, [{"id": 1, "tier": "gold", "seen_at": jan(10)}], **SCD2)
    # Same values, earlier: the version started earlier (no second gold version).
    assert counts(await load(target, [{"id": 1, "tier": "gold", "seen_at": jan(5)}], **SCD2)) == (
        0,
        1,
        0,
        0,
    )
    # Other values, earlier still: a closed version before it.
    result = await load(target, [{"id": 1, "tier": "tin", "seen_at": jan(2)}], **SCD2)
    assert counts(result) == (1, 0, 0, 0)
    assert await timeline(target) == [
        (1, "tin", "2026-01-02", "2026-01-05", False),
        (1, "gold", "2026-01-05", None, True),
    ]


# -- dry runs and transactions ---------------------------------------------------


async def test_dry_run_reports_what_a_load_would_do_and_writes_nothing(
    target: SqlTarget,
) -> None:
    fresh = await load(target, ITEMS, mode="merge", keys=["id"], dry_run=True)
    assert fresh.dry_run
    assert fresh.created_table
    assert counts(fresh) == (3, 0, 0, 0)
    assert [c.key for c in fresh.preview] == [{"id": 1}, {"id": 2}, {"id": 3}]
    assert "items" not in await tables(target)  # even the table creation rolled back
    await load(target, ITEMS, mode="merge", keys=["id"])
    batch = [{"id": 2, "name": "bee", "price": 7.0}, {"id": 9, "name": "gnu", "price": 9.0}]
    planned = await load(target, batch, mode="merge", keys=["id"], dry_run=True)
    assert counts(planned) == (1, 1, 0, 0)
    assert [(c.action, c.key) for c in planned.preview] == [
        ("insert", {"id": 9}),
        ("update", {"id": 2}),
    ]
    assert await select(target, "SELECT COUNT(*) FROM items WHERE price = 7.0") == [(0,)]
    done = await load(target, batch, mode="merge", keys=["id"])
    assert counts(done) == counts(planned)
    assert not done.preview


async def test_scd2_dry_run_names_inserts_and_closes(target: SqlTarget) -> None:
    await load(target, [{"id": 1, "tier": "gold", "seen_at": jan(1)}], **SCD2)
    change = [{"id": 1, "tier": "jade", "seen_at": jan(3)}]
    planned = await load(target, change, dry_run=True, **SCD2)
    assert counts(planned) == (1, 0, 1, 0)
    assert [c.action for c in planned.preview] == ["insert", "close"]
    assert await timeline(target) == [(1, "gold", "2026-01-01", None, True)]


async def test_a_failing_load_leaves_no_trace(target: SqlTarget) -> None:
    # Two rows with one primary key: the database refuses the insert after the table
    # was created in the same transaction, so the table is gone again.
    twice = [{"id": 1, "name": "a", "price": 1.0}, {"id": 1, "name": "b", "price": 1.0}]
    with pytest.raises(BackendError) as caught:
        await load(target, twice, keys=["id"])
    assert "items" not in await tables(target)
    assert "load into" in str(caught.value)


async def test_merge_refuses_two_rows_for_one_key(target: SqlTarget) -> None:
    twice = [{"id": 1, "name": "a", "price": 1.0}, {"id": 1, "name": "b", "price": 1.0}]
    with pytest.raises(SqlLoadError, match=r"two rows have \{'id': 1\}"):
        await load(target, twice, mode="merge", keys=["id"])


# -- schema drift ---------------------------------------------------------------


async def test_drift_fail_names_new_and_changed_columns(target: SqlTarget) -> None:
    await load(target, ITEMS, mode="merge", keys=["id"])
    grown = [{"id": 1, "name": "ant", "price": 1.5, "colour": "red"}]
    with pytest.raises(SchemaDriftError, match="new column") as caught:
        await load(target, grown, mode="merge", keys=["id"])
    assert caught.value.new_columns == ("colour",)
    retyped = [{"id": 1, "name": 42, "price": 1.5}]
    with pytest.raises(SchemaDriftError, match="'name'") as caught:
        await load(target, retyped, mode="merge", keys=["id"], drift="add_columns")
    assert caught.value.changed_columns == ("name",)


async def test_drift_add_columns_alters_the_table(target: SqlTarget) -> None:
    await load(target, ITEMS, mode="merge", keys=["id"])
    grown = [{"id": 1, "name": "ant", "price": 1.5, "colour": "red"}]
    result = await load(target, grown, mode="merge", keys=["id"], drift="add_columns")
    assert result.added_columns == ("colour",)
    assert counts(result) == (0, 1, 0, 0)
    got = await select(target, "SELECT id, colour FROM items ORDER BY id")
    assert got == [(1, "red"), (2, None), (3, None)]


async def test_drift_ignore_drops_unknown_columns(target: SqlTarget) -> None:
    await load(target, ITEMS, mode="merge", keys=["id"])
    grown = [{"id": 1, "name": "ant", "price": 1.5, "colour": "red"}]
    result = await load(target, grown, mode="merge", keys=["id"], drift="ignore")
    assert result.dropped_columns == ("colour",)
    assert counts(result) == (0, 0, 0, 1)
    assert (
        result.rows_hash
        == (await load(target, grown[:1], mode="merge", keys=["id"], drift="ignore")).rows_hash
    )
    columns = await select(target, "SELECT * FROM items WHERE id = 1")
    assert len(columns[0]) == 3


async def test_every_supported_type_round_trips_and_reruns_are_no_ops(target: SqlTarget) -> None:
    rows = [
        {
            "id": i,
            "ok": i % 2 == 0,
            "amount": Decimal("12.50") + i,
            "ratio": i / 4,
            "day": date(2026, 1, 1 + i),
            "naive": datetime(2026, 1, 1, 12, i),
            "aware": datetime(2026, 1, 1, 12, i, tzinfo=timezone(timedelta(hours=2))),
            "blob": bytes([i, 255]),
            "note": None,
        }
        for i in range(3)
    ]
    for mode in ("append", "merge"):
        table = f"typed_{mode}"
        first = await load(target, rows, table=table, mode=mode, keys=["id"])
        assert counts(first) == (3, 0, 0, 0)
        assert counts(await load(target, rows, table=table, mode=mode, keys=["id"])) == (0, 0, 0, 3)
    got = await select(target, "SELECT id, ok, day, blob FROM typed_merge ORDER BY id")
    assert [(i, bool(ok), str(d)[:10], bytes(b)) for i, ok, d, b in got] == [
        (i, i % 2 == 0, f"2026-01-0{1 + i}", bytes([i, 255])) for i in range(3)
    ]
    changed = [{**rows[0], "amount": Decimal("99.00")}, *rows[1:]]
    result = await load(target, changed, table="typed_merge", mode="merge", keys=["id"])
    assert counts(result) == (0, 1, 0, 2)


# -- inputs, settings -------------------------------------------------------------


class Item(BaseModel):
    id: int
    name: str
    price: float


@pytest.mark.parametrize("case", [("sqlite", "asyncio")], ids=["sqlite-asyncio"])
async def test_dicts_models_and_arrow_tables_load_the_same_rows(target: SqlTarget) -> None:
    as_dicts = await load(target, ITEMS, table="a", mode="merge", keys=["id"])
    as_models = await load(
        target, [Item(**row) for row in ITEMS], table="b", mode="merge", keys=["id"]
    )
    as_arrow = await load(target, pa.Table.from_pylist(ITEMS), table="c", mode="merge", keys=["id"])
    assert as_dicts.rows_hash == as_models.rows_hash == as_arrow.rows_hash
    for table in "abc":
        got = await select(target, f"SELECT id, name, price FROM {table} ORDER BY id")
        assert got == [(1, "ant", 1.5), (2, "bee", 2.0), (3, "cat", 3.25)]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"mode": "merge"}, "needs keys"),
        ({"mode": "scd2", "keys": ["id"]}, "needs event_time"),
        ({"mode": "upsert"}, "mode 'upsert' is not one of"),
        ({"table": "items; DROP TABLE x"}, "is not a plain name"),
        ({"event_time": "at"}, "only used by mode 'scd2'"),
        ({"mode": "merge", "keys": ["id"], "compare": ["id"]}, "compare lists key"),
    ],
)
async def test_bad_settings_fail_when_the_knot_is_built(
    settings: dict[str, Any], message: str
) -> None:
    settings.setdefault("table", "items")
    with pytest.raises(SqlLoadError, match=message):
        SqlLoad(target="sqlite:///x.db", rows=[], _config=KnotConfig(id="l"), **settings)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ({"id": 1}, "rows must be a list"),
        ([{"id": 1}, 5], "row 1 is a int"),
        ([{"id": 1}, {"id": "2"}], "column 'id' mixes value types"),
        ([{"id": 1, "tags": ["a"]}], "column 'tags' holds list values"),
        ([{"id": None, "name": "x"}], "a row has a null in"),
    ],
)
async def test_bad_rows_fail_naming_the_problem(rows: object, message: str) -> None:
    loader = SqlLoad(
        target="sqlite:///never.db",
        table="t",
        mode="merge",
        keys=["id"],
        rows=rows,
        _config=KnotConfig(id="l"),
    )
    with pytest.raises(SqlLoadError, match=message):
        await loader.process(rows=rows)


def test_importing_the_package_loads_no_driver() -> None:
    code = (
        "import sys, pirn_like.capabilities.sql as s; s.SqlLoad; "
        "print(sorted(m for m in ('aiosqlite', 'asyncpg', 'duckdb', 'pyarrow', 'orjson') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


async def test_a_target_entered_twice_closes_with_the_outer_block(
    target: SqlTarget,
) -> None:
    async with target:
        await load(target, ITEMS)
    assert counts(await load(target, ITEMS)) == (0, 0, 0, 3)  # still open
    await target.aclose()
    with pytest.raises(ClosedResourceError):
        await load(target, ITEMS)


def test_the_config_hash_names_the_target_without_its_password() -> None:
    loader = SqlLoad(
        target="postgresql://u:hunter2@db.example/wh",
        table="t",
        rows=[],
        _config=KnotConfig(id="l"),
    )
    settings = loader.identity_settings()
    assert settings["target"] == "postgresql://u:***@db.example/wh"
    other = SqlLoad(target="sqlite:///other.db", table="t", rows=[], _config=KnotConfig(id="l"))
    assert loader.config_hash != other.config_hash


# -- lineage ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "case", [("sqlite", "asyncio"), ("duckdb", "trio")], ids=["sqlite-asyncio", "duckdb-trio"]
)
async def test_the_load_links_back_to_the_rows_it_loaded(url: str, tmp_path: Path) -> None:
    @knot
    async def price_list(factor: float) -> list[dict[str, object]]:
        return [{**row, "price": row["price"] * factor} for row in ITEMS]

    history = history_from_url(f"{url.partition(':')[0]}:///{tmp_path / 'runs.db'}")
    with Tapestry(history=history) as t:
        rows = price_list(factor=Parameter("factor", float), _config=KnotConfig(id="rows"))
        SqlLoad(
            target=url,
            table="prices",
            mode="merge",
            keys=["id"],
            rows=rows,
            _config=KnotConfig(id="load"),
        )
    async with t:
        first = await t.run(RunRequest(parameters={"factor": 2.0}))
        again = await t.run(RunRequest(parameters={"factor": 2.0}))
        assert first.succeeded
        assert again.succeeded
        result = first.outputs["load"]
        assert isinstance(result, SqlLoadResult)
        assert counts(result) == (3, 0, 0, 0)
        assert counts(again.outputs["load"]) == (0, 0, 0, 3)
        record = first.lineage_for("load")
        assert record.parent_input_hashes["rows"] == first.lineage_for("rows").output_hash
        graph = await history.provenance(record.output_hash or "")
        upstream = {
            data["record"].knot_id
            for node, data in graph.nodes(data=True)
            if data.get("kind") == "execution" and node.startswith(f"exec:{first.run_id}/")
        }
        assert {"rows", "load", "param:factor"} <= upstream
        rows_hash = first.lineage_for("rows").output_hash or ""
        assert graph.has_edge(rows_hash, f"exec:{first.run_id}/load")
        assert graph.has_edge(f"exec:{first.run_id}/load", record.output_hash)
        # Same rows, another effect (nothing inserted): another output hash.
        assert again.lineage_for("rows").output_hash == rows_hash
        assert again.lineage_for("load").output_hash != record.output_hash
        consumers = await history.query_lineage_by_input_hash(
            first.lineage_for("rows").output_hash or ""
        )
        assert {c.knot_id for c in consumers} >= {"load"}
