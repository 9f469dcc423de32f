"""Knots the remote-dispatcher tests run on worker processes.

They live in an importable module (not in a test) so workers can load them by name.
State does not cross processes: knots count attempts and report progress through
files and sockets the test gives them.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import AsyncGenerator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import numpy as np

from pirn_like import RunRequest, RunResult, Tapestry, knot

# -- RayDispatcher tests ---------------------------------------------------------------


@knot
def add(a: int, b: int) -> int:
    return a + b


@knot
async def async_pid(x: int) -> list[int]:
    """``[2 * x, pid]``, awaited on the worker (a checkpoint proves a loop runs it)."""
    await anyio.lowlevel.checkpoint()
    return [2 * x, os.getpid()]


@knot
def fail_with(message: str) -> int:
    raise ValueError(message)


@knot
def flaky(counter: str, failures: int) -> int:
    """Fails with ConnectionError ``failures`` times, then returns the attempt number."""
    with Path(counter).open("a") as file:
        file.write("x")
    attempt = len(Path(counter).read_text())
    if attempt <= failures:
        raise ConnectionError(f"attempt {attempt} fails")
    return attempt


@knot
def report_then_mark(port: int, seconds: float, marker: str) -> str:
    """Send this worker's pid to ``port``, keep the connection open for ``seconds``,
    then write ``marker`` and close it: the test sees EOF when the worker dies or ends."""
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(f"{os.getpid()}\n".encode())
        time.sleep(seconds)
        Path(marker).write_text("finished")
    return "finished"


@knot
def die_on_first_attempt(port: int, counter: str) -> str:
    """The first attempt reports its pid to ``port`` and waits to be killed."""
    with Path(counter).open("a") as file:
        file.write("x")
    if len(Path(counter).read_text()) > 1:
        return "survived"
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(f"{os.getpid()}\n".encode())
        time.sleep(120)
    return "not killed"


@knot
def big_array(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.float64)


@knot
def array_total(values: np.ndarray) -> float:
    return float(values.sum())


# -- ProcessDispatcher, DaskDispatcher and payload tests -------------------------------


def plain_add(a: int, b: int) -> int:
    """A plain module-level function: its code can travel by reference."""
    return a + b


async def plain_add_async(a: int, b: int) -> int:
    await anyio.lowlevel.checkpoint()
    return a + b


def plain_fail(message: str) -> int:
    raise ValueError(message)


def plain_fail_unimportable(message: str) -> int:
    """Raises an exception whose class exists only inside this call."""

    class LocalOnlyError(Exception):
        pass

    raise LocalOnlyError(message)


def plain_fail_unsendable(message: str) -> int:
    """Raises an exception whose arguments no safe serializer can carry."""
    raise RuntimeError(message, object())


@knot
def fail_unimportable(message: str) -> int:
    return plain_fail_unimportable(message)


@knot
def hold(port: int) -> int:
    """Occupy a worker until the test closes the connection on ``port``."""
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(f"{os.getpid()}\n".encode())
        while conn.recv(1024):
            pass
    return os.getpid()


@knot
def mark(marker: str) -> str:
    Path(marker).write_text("ran")
    return "ran"


def scheduler_keys(dask_scheduler: object) -> list[str]:
    """The keys of every task a Dask scheduler knows (run with client.run_on_scheduler)."""
    return [str(key) for key in dask_scheduler.tasks]  # type: ignore[attr-defined]


# -- the test's side of the reporting knots (report_then_mark, die_on_first_attempt, hold) -


class Reporter:
    """One knot's connection: its worker's pid, then end-of-stream when the knot ends or
    its worker dies (so a test waits on events, not on time)."""

    def __init__(self, stream: anyio.abc.SocketStream) -> None:
        self.stream = stream

    async def pid(self) -> int:
        data = b""
        while not data.endswith(b"\n"):
            data += await self.stream.receive()
        return int(data)

    async def closed(self) -> None:
        try:
            while True:
                await self.stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            return


@asynccontextmanager
async def listening() -> AsyncGenerator[tuple[int, anyio.abc.SocketListener]]:
    """A TCP listener on a free local port for knots to report to: ``(port, listener)``."""
    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as multi:
        listener = multi.listeners[0]
        assert isinstance(listener, anyio.abc.SocketListener)
        yield listener.extra(anyio.abc.SocketAttribute.local_port), listener


async def accept_reporter(listener: anyio.abc.SocketListener) -> Reporter:
    return Reporter(await listener.accept())


async def kill_reporting_worker(listener: anyio.abc.SocketListener) -> None:
    """Kill the worker process of the next knot that reports, and wait until it is gone."""
    reporter = await accept_reporter(listener)
    os.kill(await reporter.pid(), signal.SIGKILL)
    await reporter.closed()


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def run_alongside(
    t: Tapestry,
    side: Callable[[], Coroutine[Any, Any, object]],
    request: RunRequest | None = None,
) -> RunResult:
    """Run ``t`` while ``side`` (e.g. ``partial(kill_reporting_worker, listener)``) runs
    next to it in one task group; the result once both are done."""
    results: list[RunResult] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(side)
        results.append(await t.run(request))
    return results[0]


@knot
async def add_async(a: int, b: int) -> int:
    """Deterministic and async: for comparing lineage across dispatchers."""
    return a + b
