"""Celery workers for the CeleryDispatcher tests, on the session's ValKey server.

Each worker is a real ``celery worker`` subprocess (prefork pool) in its own process
group, loading ``tests/_celery_app.py``; it is ready when it answers a ping, and is
stopped with SIGTERM, then SIGKILL for its whole group.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Generator, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest
from _celery_app import KEY_ENV, make_app
from celery import Celery

_TESTS = Path(__file__).resolve().parent
_START_DEADLINE = 30.0
_STOP_DEADLINE = 10.0

_PICKLE_KEY = b"celery-tests-pickle-key-not-secret"


@dataclass(frozen=True, slots=True)
class CeleryWorker:
    """A running worker: its node name, the queue it consumes, its process, its key."""

    hostname: str
    queue: str
    process: subprocess.Popen[bytes]
    pickle_key: bytes | None


@contextmanager
def run_celery_worker(
    app: Celery,
    log_dir: Path,
    *,
    queue: str,
    concurrency: int = 2,
    pickle_key: bytes | None = None,
    app_module: str = "_celery_app",
) -> Generator[CeleryWorker]:
    """Run a worker for ``app``'s broker consuming ``queue`` until the block ends; it
    loads ``app_module`` (importable from tests/, the repository or PYTHONPATH)."""
    hostname = f"pirn-{queue}-{uuid.uuid4().hex[:8]}@localhost"
    url = str(app.conf.broker_url)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(_TESTS), str(_TESTS.parent), env.get("PYTHONPATH")) if p
    )
    env.pop(KEY_ENV, None)
    if pickle_key is not None:
        env[KEY_ENV] = pickle_key.hex()
    argv = [
        sys.executable, "-m", "celery", "-A", app_module,
        "-b", url, "--result-backend", str(app.conf.result_backend),
        "worker", "--pool", "prefork", "--concurrency", str(concurrency),
        "--hostname", hostname, "--queues", queue,
        "--without-mingle", "--without-gossip", "--loglevel", "INFO",
    ]  # fmt: skip
    log = log_dir / f"{hostname.partition('@')[0]}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, cwd=_TESTS, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_until_ready(app, hostname, process, log)
        yield CeleryWorker(hostname, queue, process, pickle_key)
    finally:
        process.send_signal(signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=_STOP_DEADLINE)
        # Pool processes the worker left behind (or all of them, if it hangs) go too.
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _wait_until_ready(
    app: Celery, hostname: str, process: subprocess.Popen[bytes], log: Path
) -> None:
    deadline = time.monotonic() + _START_DEADLINE
    while not app.control.ping(destination=[hostname], timeout=0.25):
        code = process.poll()
        if code is not None or time.monotonic() > deadline:
            reason = f"exited with code {code}" if code is not None else "did not answer a ping"
            raise RuntimeError(
                f"celery worker {hostname} {reason}; its log ({log}):\n"
                f"{log.read_text(errors='replace')}"
            )


@pytest.fixture(scope="session")
def celery_app(valkey_server: tuple[str, int]) -> Iterator[Celery]:
    """A client app whose broker and result backend are the session's ValKey (db 1)."""
    host, port = valkey_server
    app = make_app(f"redis://{host}:{port}/1")
    try:
        yield app
    finally:
        app.close()


@pytest.fixture(scope="session")
def celery_worker(
    celery_app: Celery, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CeleryWorker]:
    """A worker without a pickle key (two prefork processes) on the default queue."""
    with run_celery_worker(celery_app, tmp_path_factory.mktemp("celery"), queue="celery") as worker:
        yield worker


@pytest.fixture
def start_celery_worker(
    celery_app: Celery, tmp_path: Path
) -> Callable[..., AbstractContextManager[CeleryWorker]]:
    """``run_celery_worker`` for this test's own worker: ``start_celery_worker(queue=...)``."""
    return functools.partial(run_celery_worker, celery_app, tmp_path)


@pytest.fixture(scope="session")
def celery_signed_worker(
    celery_app: Celery, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CeleryWorker]:
    """A worker holding a pickle key, on its own queue."""
    with run_celery_worker(
        celery_app,
        tmp_path_factory.mktemp("celery-signed"),
        queue="signed",
        concurrency=1,
        pickle_key=_PICKLE_KEY,
    ) as worker:
        yield worker
