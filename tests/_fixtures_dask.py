"""Session-scoped local Dask cluster for the DaskDispatcher tests.

A real scheduler (in this process) and two worker processes with one thread each, their
HTTP endpoints on free ports and their scratch space in a fresh temp dir. The scheduler
gives up on a task the first time a worker dies running it (``allowed_failures=0``), so a
killed worker surfaces as ``WorkerLostError`` at once instead of after Dask's own reruns.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session", name="dask_scheduler")
def _dask_scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The address of a running local Dask scheduler with two worker processes."""
    import distributed

    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",  # its HTTP endpoints on a free port
        host="127.0.0.1",
        local_directory=str(tmp_path_factory.mktemp("dask")),
        scheduler_kwargs={"allowed_failures": 0},
    )
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()
