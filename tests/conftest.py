"""Shared fixtures and suite rules."""

from __future__ import annotations

import pytest

# Real servers, started once per test session (per xdist worker) on free ports.
pytest_plugins = [
    "_fixtures_postgres",
    "_fixtures_valkey",
    "_fixtures_s3",
    "_fixtures_dask",
    "_fixtures_ray",
    "_fixtures_celery",
    "_fixtures_kafka",
    "_fixtures_browser",
]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Every async test runs on asyncio and on trio: the engine is anyio-portable."""
    return request.param


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    """A skipped test fails: CI must never pass by not testing something."""
    report = yield
    if report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped tests are not allowed in this suite: {report.longrepr}"
    return report
