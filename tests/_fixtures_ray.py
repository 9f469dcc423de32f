"""Session-scoped local Ray cluster for the RayDispatcher tests.

``ray.init`` in this process starts the cluster (GCS, raylet, two worker slots) with
its files in a fresh temp dir, so it never joins another session's cluster;
``ray.shutdown`` stops every process it started.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[str]:
    """The GCS address of a running local Ray cluster, initialized in this process."""
    import ray

    # Short on purpose: Ray puts unix sockets under it (108-byte path limit).
    temp_dir = tempfile.mkdtemp(prefix="ray-")
    # Workers inherit the raylet's environment: they must import the test knots by name.
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(_TESTS), saved) if p)
    try:
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            object_store_memory=80 * 1024 * 1024,
            log_to_driver=False,
            configure_logging=False,
            _temp_dir=temp_dir,
        )
    except Exception as exc:
        raise RuntimeError(f"Ray did not start; its logs:\n{_logs(temp_dir)}") from exc
    finally:
        if saved is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = saved
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)


def _logs(temp_dir: str) -> str:
    logs = sorted(Path(temp_dir).glob("session_*/logs/*.err")) + sorted(
        Path(temp_dir).glob("session_*/logs/*.out")
    )
    return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-4000:]}" for log in logs)
