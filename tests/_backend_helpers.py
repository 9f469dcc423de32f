"""What the backend conformance suites share: each test runs over the backends its
decorator names (all by default), each on the event loops that backend runs on; and
SQL run behind a backend's back."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Collection, Sequence
from contextlib import closing
from typing import Any, TypeVar

import asyncpg
import duckdb
import pytest

_F = TypeVar("_F", bound=Callable[..., Any])


def kinds(*names: str) -> Callable[[_F], _F]:
    """Run the decorated conformance test over these backends only."""

    def mark(test: _F) -> _F:
        test.store_kinds = names  # type: ignore[attr-defined]
        return test

    return mark


def parametrize_kinds(
    metafunc: pytest.Metafunc, every: Sequence[str], *, asyncio_only: Collection[str] = ()
) -> None:
    """For a module's ``pytest_generate_tests``: pair each backend a test takes
    (``store_kind``) with the event loops it runs on (ids ``[disk]``, ``[disk-trio]``)."""
    if "store_kind" not in metafunc.fixturenames:
        return
    names: Sequence[str] = getattr(metafunc.function, "store_kinds", every)
    metafunc.parametrize(
        ("store_kind", "anyio_backend"),
        [
            pytest.param(kind, backend, id=kind if backend == "asyncio" else f"{kind}-{backend}")
            for kind in names
            for backend in ("asyncio", "trio")
            if backend == "asyncio" or kind not in asyncio_only
        ],
    )


def execute_sql(url: str, sql: str) -> None:
    """Run ``sql`` in the database ``url`` names (``sqlite:///``, ``duckdb:///`` or
    ``postgresql://``) and commit it, as another program would. Blocking: from async
    code, run it in a worker thread."""
    scheme = url.partition(":")[0]
    match scheme:
        case "sqlite":
            with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn, conn:
                conn.execute(sql)
        case "duckdb":
            with duckdb.connect(url.removeprefix("duckdb:///")) as conn:
                conn.execute(sql)
        case "postgresql":
            asyncio.run(_execute_postgres(url, sql))
        case _:
            raise AssertionError(f"no SQL database at {url!r}")


def fetch_sql(url: str, sql: str) -> list[tuple[Any, ...]]:
    """The rows ``sql`` selects in the database ``url`` names, read as another program
    would. Blocking: from async code, run it in a worker thread."""
    scheme = url.partition(":")[0]
    match scheme:
        case "sqlite":
            with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn:
                return [tuple(row) for row in conn.execute(sql).fetchall()]
        case "duckdb":
            with duckdb.connect(url.removeprefix("duckdb:///")) as conn:
                return [tuple(row) for row in conn.execute(sql).fetchall()]
        case "postgresql":
            return asyncio.run(_fetch_postgres(url, sql))
        case _:
            raise AssertionError(f"no SQL database at {url!r}")


async def _execute_postgres(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _fetch_postgres(url: str, sql: str) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(url)
    try:
        return [tuple(row) for row in await conn.fetch(sql)]
    finally:
        await conn.close()
