"""Serving an ASGI app with uvicorn inside the caller's task group (asyncio only)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any

import anyio
import uvicorn
from anyio.abc import TaskStatus

__all__ = ["serve_asgi"]

_START_DEADLINE = 10.0
_SHUTDOWN_GRACE = 5
"""Seconds open connections get to finish when the server stops."""


@contextlib.asynccontextmanager
async def serve_asgi(app: Any, *, host: str, port: int, name: str) -> AsyncGenerator[int]:
    """Serve ``app`` on ``host:port`` until the block ends; yields the bound port.

    The socket is bound here, so a taken port raises ``OSError`` at once (and
    ``port=0`` picks a free one). Signals are left to the caller (``run_forever``
    handles SIGTERM), and uvicorn's logging setup is not applied.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError(
            f"{name} serves HTTP with uvicorn, which runs on asyncio only: run under "
            "asyncio, or pass serve=False and serve its .app with an ASGI server of your own"
        ) from None
    sock = _bind(host, port)
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        lifespan="off",
        server_header=False,
        timeout_graceful_shutdown=_SHUTDOWN_GRACE,
    )
    server = _Server(config)
    try:
        async with anyio.create_task_group() as tg:
            try:
                with anyio.fail_after(_START_DEADLINE):
                    await tg.start(_run, server, sock)
                yield int(sock.getsockname()[1])
            finally:
                server.should_exit = True
    finally:
        sock.close()


class _Server(uvicorn.Server):
    """uvicorn's server, saying when it listens and leaving signals alone."""

    on_started: Callable[[], None] | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None]:
        # The service that owns this server decides what a signal means.
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and self.on_started is not None:
            self.on_started()


async def _run(server: _Server, sock: socket.socket, *, task_status: TaskStatus[None]) -> None:
    server.on_started = task_status.started
    try:
        # Shielded: a cancelled owner still stops the server through should_exit, so
        # connections are closed properly rather than abandoned mid-response.
        with anyio.CancelScope(shield=True):
            await server.serve(sockets=[sock])
    except SystemExit as exc:  # uvicorn exits the process when it cannot start
        raise RuntimeError(f"uvicorn could not serve on {sock.getsockname()}") from exc


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are
    # TCP, and without it every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock
